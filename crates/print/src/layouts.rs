//! The layouts that ship with Tessera, ready to load into a fresh installation.

use tessera_core::ids::LayoutId;
use tessera_core::model::Layout;

/// Corporate Badge, front: header band with the company name, photo, name, title, department,
/// employee id as Code 128, expiry date.
pub const CORPORATE_BADGE_FRONT: &str = include_str!("layouts/corporate-badge-front.svg");
/// Corporate Badge, back: QR code of the user id, return-if-found notice, card serial.
pub const CORPORATE_BADGE_BACK: &str = include_str!("layouts/corporate-badge-back.svg");

/// The Corporate Badge as a layout record (id `corporate-badge`, version 1, open to everyone).
pub fn corporate_badge() -> Layout {
    Layout {
        id: LayoutId::new("corporate-badge"),
        name: "Corporate Badge".into(),
        description: "Landscape employee badge: photo, name, title, department, employee id \
                      barcode and expiry on the front; QR code of the user id and a \
                      return-if-found notice on the back."
            .into(),
        front_svg: CORPORATE_BADGE_FRONT.to_owned(),
        back_svg: Some(CORPORATE_BADGE_BACK.to_owned()),
        allowed_groups: Vec::new(),
        default_for_groups: Vec::new(),
        version: 1,
    }
}
