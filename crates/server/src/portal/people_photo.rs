//! A person's photo from the User page: upload (with the crop the page's script drew, in the
//! photo's own pixels) and remove. The photo normaliser behind the use case checks the file and
//! re-encodes it; without script the whole photo is taken.

use super::multipart_form;
use super::CsrfForm;
use crate::app::AppState;
use crate::auth::SignedIn;
use crate::web_error::WebError;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use tessera_core::ids::UserId;
use tessera_core::people::photos;
use tessera_core::ports::Crop;
use tessera_print::photo::MAX_PHOTO_BYTES;

/// The body a photo upload may have: the photo and the form around it.
pub const PHOTO_BODY_BYTES: usize = MAX_PHOTO_BYTES + 256 * 1024;

/// The crop the form gives: all four fields, or none (the whole photo).
fn crop(form: &multipart_form::MultipartForm) -> Result<Option<Crop>, WebError> {
    let fields = ["crop_x", "crop_y", "crop_width", "crop_height"].map(|n| form.text(n));
    if fields.iter().all(|f| f.is_empty()) {
        return Ok(None);
    }
    let mut numbers = [0u32; 4];
    for (n, f) in numbers.iter_mut().zip(fields) {
        *n = f.parse().map_err(|_| {
            WebError::bad_request(
                "The crop of the photo is not four whole numbers: choose the photo again.",
            )
        })?;
    }
    let [x, y, width, height] = numbers;
    Ok(Some(Crop {
        x,
        y,
        width,
        height,
    }))
}

/// `POST /users/{uid}/photo`: the file `photo`, and optionally `crop_x`, `crop_y`,
/// `crop_width`, `crop_height`.
pub async fn upload(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let limit = format!(
        "a photo may have up to {} MiB",
        MAX_PHOTO_BYTES / (1024 * 1024)
    );
    let mut form = multipart_form::read(
        &signed_in,
        &headers,
        multipart,
        &[("photo", MAX_PHOTO_BYTES, &limit)],
    )
    .await?;
    let crop = crop(&form)?;
    // No file chosen reaches the use case as no bytes: it checks who may first, then refuses
    // them as not a photo.
    let bytes = form.take_file("photo").map(|f| f.bytes).unwrap_or_default();
    let uid = UserId::new(uid);
    photos::set(
        &state.tessera.services,
        &signed_in.actor(),
        &uid,
        bytes,
        crop,
    )
    .await?;
    Ok(super::users::to_user_page(uid.as_str(), "photo"))
}

/// `POST /users/{uid}/photo/remove`.
pub async fn remove(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(uid): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed_in.check_csrf(&f.csrf)?;
    let uid = UserId::new(uid);
    photos::remove(&state.tessera.services, &signed_in.actor(), &uid).await?;
    Ok(super::users::to_user_page(uid.as_str(), "photo_removed"))
}
