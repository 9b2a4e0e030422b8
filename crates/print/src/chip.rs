//! Where a contact chip sits on the card, so that layouts leave it clear.
//!
//! ISO/IEC 7816-2 fixes the contacts of an ID-1 (CR80) card: eight contacts, C1 to C4 in a column
//! 10.25 to 12.25 mm from the card's left edge and C5 to C8 in a column 17.87 to 19.87 mm from
//! it, the rows from 19.23 mm (top of C1 and C5) to 28.55 mm (bottom of C4 and C8) below the
//! top edge, on the face that carries the chip (the front of a PIV card). The gold plate of the
//! module is larger than the contacts it carries, and card printers leave ink off a band around
//! a chip (Datacard asks for 2.5 mm), so a layout keeps a larger rectangle clear:
//! [`CHIP_KEEP_OUT`], the contact area grown by about 2.7 mm on every side. The test that every
//! built-in layout leaves it clear, the dashed guide of the portal's layout preview and
//! docs/layouts.md all read these constants.
//!
//! On a portrait side the card is turned a quarter to the left, so that the ISO left edge is at
//! the bottom: the chip sits low and a little left of the middle ([`keep_out`]). A printer that
//! turns the card the other way puts it near the top; its layouts must follow that printer.

use crate::render::{Orientation, CR80_WIDTH_MM};
use resvg::usvg;

/// A rectangle on the card, in millimetres from the card's top-left corner.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MmRect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl MmRect {
    pub fn right(&self) -> f32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f32 {
        self.y + self.height
    }

    /// True when the two rectangles share some area (touching edges do not count).
    pub fn intersects(&self, other: &MmRect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    /// True when `self` contains `other` whole.
    pub fn contains(&self, other: &MmRect) -> bool {
        self.x <= other.x
            && self.y <= other.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }
}

/// The area of the eight contacts of ISO/IEC 7816-2 on a landscape card: C1 top-left at
/// 10.25 mm x 19.23 mm, C8 bottom-right at 19.87 mm x 28.55 mm.
pub const ISO7816_CONTACTS: MmRect = MmRect {
    x: 10.25,
    y: 19.23,
    width: 19.87 - 10.25,
    height: 28.55 - 19.23,
};

/// What a landscape layout keeps clear for the chip: 7.5 to 22.5 mm from the left edge, 16.5 to
/// 31.5 mm from the top, the contact area and the module's plate around it with a printer's
/// margin. Only the card's ground (an element that covers the whole card) may pass beneath.
pub const CHIP_KEEP_OUT: MmRect = MmRect {
    x: 7.5,
    y: 16.5,
    width: 15.0,
    height: 15.0,
};

/// The keep-out rectangle on a side of this orientation. A portrait side is the landscape card
/// turned a quarter to the left: the ISO left edge is at the bottom, its top edge on the left.
pub fn keep_out(orientation: Orientation) -> MmRect {
    turned(CHIP_KEEP_OUT, orientation)
}

/// The contact area on a side of this orientation (see [`keep_out`]).
pub fn contacts(orientation: Orientation) -> MmRect {
    turned(ISO7816_CONTACTS, orientation)
}

fn turned(r: MmRect, orientation: Orientation) -> MmRect {
    match orientation {
        Orientation::Landscape => r,
        Orientation::Portrait => MmRect {
            x: r.y,
            y: CR80_WIDTH_MM - r.right(),
            width: r.height,
            height: r.width,
        },
    }
}

/// One drawn element that reaches into the chip's keep-out area.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipOverlap {
    /// What it is: `text "Jane Doe"`, `image`, `path #photo-frame`.
    pub element: String,
    /// Its bounding box on the card, stroke and filter region included.
    pub bounds: MmRect,
}

impl std::fmt::Display for ChipOverlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.bounds;
        write!(
            f,
            "{} ({:.1} to {:.1} mm from the left, {:.1} to {:.1} mm from the top)",
            self.element,
            b.x,
            b.right(),
            b.y,
            b.bottom()
        )
    }
}

/// Every element of a parsed side that is drawn in the keep-out area, other than the card's
/// ground. Boxes are the renderer's own (after every transform, text laid out with the shipped
/// fonts, strokes included; a group with a filter counts as one box, its filter region), so
/// any construct the renderer can draw is measured. Clipping is ignored: a box is never smaller
/// than what is drawn.
pub(crate) fn overlaps(tree: &usvg::Tree, orientation: Orientation) -> Vec<ChipOverlap> {
    let (card_w, card_h) = orientation.size_mm();
    let size = tree.size();
    let scale = (card_w / size.width(), card_h / size.height());
    let card = MmRect {
        x: 0.0,
        y: 0.0,
        width: card_w,
        height: card_h,
    };
    let zone = keep_out(orientation);
    let mut found = Vec::new();
    walk(tree.root(), &mut |node, rect| {
        let bounds = MmRect {
            x: rect.x() * scale.0,
            y: rect.y() * scale.1,
            width: rect.width() * scale.0,
            height: rect.height() * scale.1,
        };
        // The ground: a fill under the whole card (half a millimetre short still counts).
        let ground = MmRect {
            x: bounds.x - 0.5,
            y: bounds.y - 0.5,
            width: bounds.width + 1.0,
            height: bounds.height + 1.0,
        };
        if bounds.intersects(&zone) && !ground.contains(&card) {
            found.push(ChipOverlap {
                element: describe(node),
                bounds,
            });
        }
    });
    found
}

/// Calls `f` with every drawn leaf and its box in canvas units; a group with filters is one leaf.
fn walk(group: &usvg::Group, f: &mut dyn FnMut(&usvg::Node, usvg::Rect)) {
    for node in group.children() {
        match node {
            usvg::Node::Group(g) if !g.filters().is_empty() => {
                f(node, g.abs_layer_bounding_box().to_rect());
            }
            usvg::Node::Group(g) => walk(g, f),
            usvg::Node::Text(t) => f(node, t.abs_stroke_bounding_box()),
            usvg::Node::Path(p) => f(node, p.abs_stroke_bounding_box()),
            // Not `abs_bounding_box`: usvg 0.45 applies the image's own placement twice there.
            usvg::Node::Image(i) => match i.bounding_box().transform(i.abs_transform()) {
                Some(rect) => f(node, rect),
                None => f(
                    node,
                    usvg::Rect::from_xywh(0.0, 0.0, f32::MAX, f32::MAX).unwrap(),
                ),
            },
        }
    }
}

fn describe(node: &usvg::Node) -> String {
    let id = match node.id() {
        "" => String::new(),
        id => format!(" #{id}"),
    };
    match node {
        usvg::Node::Text(t) => {
            let text: String = t.chunks().iter().map(|c| c.text()).collect();
            format!("text{id} \"{}\"", text.trim())
        }
        usvg::Node::Image(_) => format!("image{id}"),
        usvg::Node::Path(_) => format!("shape{id}"),
        usvg::Node::Group(_) => format!("filtered group{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keep_out_area_holds_the_iso_contacts_with_room_around_them() {
        assert!(CHIP_KEEP_OUT.contains(&ISO7816_CONTACTS));
        let margins = [
            ISO7816_CONTACTS.x - CHIP_KEEP_OUT.x,
            ISO7816_CONTACTS.y - CHIP_KEEP_OUT.y,
            CHIP_KEEP_OUT.right() - ISO7816_CONTACTS.right(),
            CHIP_KEEP_OUT.bottom() - ISO7816_CONTACTS.bottom(),
        ];
        for m in margins {
            assert!((2.5..3.5).contains(&m), "margin {m} mm");
        }
    }

    #[test]
    fn a_portrait_side_has_the_chip_low_and_left_of_the_middle() {
        let r = keep_out(Orientation::Portrait);
        assert_eq!((r.x, r.width, r.height), (16.5, 15.0, 15.0));
        assert!((r.y - (85.6 - 22.5)).abs() < 1e-4, "{r:?}");
        let c = contacts(Orientation::Portrait);
        assert!(r.contains(&c));
        let (w, h) = Orientation::Portrait.size_mm();
        assert!(c.right() < w / 2.0 + 2.0 && c.y > h / 2.0, "{c:?}");
    }
}
