//! Layout management: list, edit or upload the SVG of each side, preview it with a chosen user's
//! data before saving, and choose which groups may use it and get it proposed first.

use super::{render, Nav};
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine;
use serde::Deserialize;
use tessera_core::ids::{DeviceId, LayoutId, UserId};
use tessera_core::layouts::{self, LayoutInput};
use tessera_core::model::{Device, Layout, Permission, User};
use tessera_core::{CoreError, DeviceState, Reason};

#[derive(Template)]
#[template(path = "layouts.html")]
struct ListPage {
    nav: Option<Nav>,
    layouts: Vec<Layout>,
    saved: bool,
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<SavedQuery>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageLayouts, "manage layouts")?;
    let layouts = state
        .tessera
        .services
        .store
        .layouts()
        .await
        .map_err(WebError::from_store)?;
    render(&ListPage {
        nav: Nav::of(&signed_in),
        layouts,
        saved: q.saved.is_some(),
    })
}

#[derive(Template)]
#[template(path = "layout_edit.html")]
struct EditPage {
    nav: Option<Nav>,
    csrf: String,
    title: String,
    version: Option<i64>,
    error: Option<String>,
    id: String,
    name: String,
    description: String,
    allowed_groups: String,
    default_for_groups: String,
    front_svg: String,
    back_svg: String,
    users: Vec<User>,
    preview_user: String,
    preview_front: Option<String>,
    preview_back: Option<String>,
    chip_guide: Option<ChipGuide>,
}

/// The dashed outline drawn over the front preview where the contact chip sits: an overlay in
/// the page, never part of the rendered card (the PNG and the PDF that go to the printer).
struct ChipGuide {
    /// The card in millimetres: `85.6 53.98` landscape, `53.98 85.6` portrait.
    width: f32,
    height: f32,
    keep_out: tessera_print::MmRect,
    contacts: tessera_print::MmRect,
}

impl ChipGuide {
    /// The guide for a front preview of this PNG (its proportions give the orientation).
    fn for_front(png: &[u8]) -> Option<Self> {
        let (w, h) = tessera_print::png_dimensions(png)?;
        let orientation = if w >= h {
            tessera_print::Orientation::Landscape
        } else {
            tessera_print::Orientation::Portrait
        };
        let (width, height) = orientation.size_mm();
        Some(Self {
            width,
            height,
            keep_out: tessera_print::chip::keep_out(orientation),
            contacts: tessera_print::chip::contacts(orientation),
        })
    }
}

/// The layout form as submitted (and as shown again after an error or a preview).
#[derive(Deserialize, Default)]
pub struct LayoutForm {
    csrf: String,
    #[serde(default)]
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    allowed_groups: String,
    #[serde(default)]
    default_for_groups: String,
    front_svg: String,
    #[serde(default)]
    back_svg: String,
    #[serde(default)]
    preview_user: String,
}

fn groups(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

impl LayoutForm {
    fn of(layout: &Layout) -> Self {
        Self {
            id: layout.id.0.clone(),
            name: layout.name.clone(),
            description: layout.description.clone(),
            allowed_groups: layout.allowed_groups.join(", "),
            default_for_groups: layout.default_for_groups.join(", "),
            front_svg: layout.front_svg.clone(),
            back_svg: layout.back_svg.clone().unwrap_or_default(),
            ..Default::default()
        }
    }

    fn input(&self) -> LayoutInput {
        LayoutInput {
            id: (!self.id.is_empty()).then(|| LayoutId::new(&self.id)),
            name: self.name.clone(),
            description: self.description.clone(),
            front_svg: self.front_svg.clone(),
            back_svg: Some(self.back_svg.clone()),
            allowed_groups: groups(&self.allowed_groups),
            default_for_groups: groups(&self.default_for_groups),
        }
    }
}

async fn edit_page(
    state: &AppState,
    signed_in: &SignedIn,
    form: LayoutForm,
    version: Option<i64>,
    error: Option<String>,
    preview: Option<(String, Option<String>, Option<ChipGuide>)>,
) -> Result<Response, WebError> {
    // The preview's user picker: the first page of users by name, in the operator's scope (a
    // designer who may not view users previews with the sample person).
    let actor = signed_in.actor();
    let users = if actor.may(tessera_core::model::Permission::ViewUsers) {
        let first_page = tessera_core::users::UserSearch {
            per_page: tessera_core::users::MAX_PER_PAGE,
            ..Default::default()
        };
        tessera_core::users::search(&state.tessera.services, &actor, &first_page)
            .await?
            .users
    } else {
        Vec::new()
    };
    let (preview_front, preview_back, chip_guide) = match preview {
        Some((f, b, g)) => (Some(f), b, g),
        None => (None, None, None),
    };
    render(&EditPage {
        nav: Nav::of(signed_in),
        csrf: signed_in.csrf.clone(),
        title: if form.id.is_empty() {
            "New layout".into()
        } else {
            format!("Layout {}", form.name)
        },
        version,
        error,
        preview_user: if form.preview_user.is_empty() {
            "jdoe".into()
        } else {
            form.preview_user.clone()
        },
        id: form.id,
        name: form.name,
        description: form.description,
        allowed_groups: form.allowed_groups,
        default_for_groups: form.default_for_groups,
        front_svg: form.front_svg,
        back_svg: form.back_svg,
        users,
        preview_front,
        preview_back,
        chip_guide,
    })
}

pub async fn edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    signed_in
        .actor()
        .require(Permission::ManageLayouts, "manage layouts")?;
    if id == "new" {
        let form = LayoutForm {
            front_svg: tessera_print::CORPORATE_BADGE_FRONT.into(),
            ..Default::default()
        };
        return edit_page(&state, &signed_in, form, None, None, None).await;
    }
    let layout = state
        .tessera
        .services
        .store
        .layouts()
        .await
        .map_err(WebError::from_store)?
        .into_iter()
        .find(|l| l.id.as_str() == id)
        .ok_or_else(|| WebError::not_found("The layout"))?;
    let version = Some(layout.version);
    edit_page(
        &state,
        &signed_in,
        LayoutForm::of(&layout),
        version,
        None,
        None,
    )
    .await
}

pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<LayoutForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&form.csrf)?;
    match layouts::save(&state.tessera.services, &signed_in.actor(), form.input()).await {
        Ok(_) => Ok(Redirect::to("/layouts?saved=1").into_response()),
        Err(CoreError::Invalid(message)) => {
            // Shown with the form as submitted, so the designer can fix it; nothing was saved.
            let mut res = edit_page(&state, &signed_in, form, None, Some(message), None).await?;
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

/// A device that exists only for previews: the fields a layout binds, with plausible values.
fn sample_device(now: tessera_core::model::Timestamp) -> Device {
    Device {
        id: DeviceId::new("00000000-0000-4000-8000-000000000000"),
        serial: "12345678".into(),
        atr: String::new(),
        device_type: "PIV".into(),
        state: DeviceState::Pending,
        reason: Reason::None,
        user: None,
        policy: None,
        layout: None,
        created_at: now,
        updated_at: now,
        activated_at: None,
        expires_at: Some(now.plus_days(1095)),
        firmware: None,
        temporary_for: None,
    }
}

pub async fn preview(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<LayoutForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&form.csrf)?;
    signed_in
        .actor()
        .require(Permission::ManageLayouts, "manage layouts")?;
    let svc = state.tessera.services.clone();
    let user = svc
        .store
        .user(&UserId::new(if form.preview_user.is_empty() {
            "jdoe"
        } else {
            &form.preview_user
        }))
        .await
        .map_err(|_| WebError::not_found("The preview user"))?;
    let input = form.input();
    let layout = Layout {
        id: input.id.clone().unwrap_or_else(|| LayoutId::new("preview")),
        name: input.name.clone(),
        description: String::new(),
        front_svg: input.front_svg.clone(),
        back_svg: input.back_svg.clone().filter(|b| !b.trim().is_empty()),
        allowed_groups: vec![],
        default_for_groups: vec![],
        version: 0,
    };
    let data =
        tessera_core::issuance::card_data(&svc, &user, &sample_device(svc.clock.now())).await?;
    let renderer = svc.renderer.clone();
    let rendered = tokio::task::spawn_blocking(move || renderer.render(&layout, &data))
        .await
        .map_err(|_| WebError::bad_request("The preview could not be rendered."))?;
    let b64 = |png: &[u8]| base64::engine::general_purpose::STANDARD.encode(png);
    match rendered {
        Ok(card) => {
            let preview = (
                b64(&card.front_png),
                card.back_png.as_deref().map(b64),
                ChipGuide::for_front(&card.front_png),
            );
            edit_page(&state, &signed_in, form, None, None, Some(preview)).await
        }
        Err(e) => {
            let message = format!("the layout cannot be rendered: {e}");
            let mut res = edit_page(&state, &signed_in, form, None, Some(message), None).await?;
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
    }
}
