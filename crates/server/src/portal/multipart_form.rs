//! Forms that upload files (`multipart/form-data`): read into memory within a limit per file,
//! with the CSRF token checked before any file is read. The token comes from the form's `csrf`
//! field, which the portal's forms put first, or from the `X-CSRF-Token` header as the API
//! takes it. A body that is not multipart reads as a form with no field, so that the use case
//! still decides (and refuses) rather than the parser answering first.

use crate::auth::SignedIn;
use crate::web_error::WebError;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, StatusCode};
use std::collections::HashMap;

/// The most text fields a form may have, and the longest one.
const MAX_FIELDS: usize = 200;
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A file sent with a form.
pub struct UploadedFile {
    /// The name the browser gave (no folder), for reports.
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// A form read whole.
#[derive(Default)]
pub struct MultipartForm {
    pub fields: HashMap<String, String>,
    pub files: HashMap<String, UploadedFile>,
}

impl MultipartForm {
    /// A text field, trimmed; empty when absent.
    pub fn text(&self, name: &str) -> &str {
        self.fields.get(name).map(|v| v.trim()).unwrap_or("")
    }

    /// Takes the file sent as `name`, when one was chosen.
    pub fn take_file(&mut self, name: &str) -> Option<UploadedFile> {
        self.files.remove(name)
    }
}

fn refused(e: MultipartError, what: &str) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQ0003",
            format!("The upload is too large: {what}."),
        )
    } else {
        tracing::info!(error = %e, "a multipart form could not be read");
        WebError::bad_request("The form could not be read: send it again.")
    }
}

/// Reads the form. `files` names each file field with its largest size and the sentence that
/// says the limit (`"a photo may have up to 10 MiB"`); a file field not named is refused.
pub async fn read(
    signed_in: &SignedIn,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
    files: &[(&str, usize, &str)],
) -> Result<MultipartForm, WebError> {
    let header = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut csrf_checked = match &header {
        Some(token) => {
            signed_in.check_csrf(token)?;
            true
        }
        None => false,
    };
    let mut form = MultipartForm::default();
    let Ok(mut multipart) = multipart else {
        if !csrf_checked {
            return Err(WebError::csrf());
        }
        return Ok(form);
    };
    let limit_sentence = files
        .iter()
        .map(|(_, _, s)| *s)
        .collect::<Vec<_>>()
        .join(", ");
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| refused(e, &limit_sentence))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            None => {
                if form.fields.len() >= MAX_FIELDS {
                    return Err(WebError::bad_request("The form has too many fields."));
                }
                let mut text = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| refused(e, &limit_sentence))?
                {
                    text.extend_from_slice(&chunk);
                    if text.len() > MAX_TEXT_BYTES {
                        return Err(WebError::bad_request(format!(
                            "The field {name} is longer than {} KiB.",
                            MAX_TEXT_BYTES / 1024
                        )));
                    }
                }
                let text = String::from_utf8(text)
                    .map_err(|_| WebError::bad_request("The form's text is not UTF-8."))?;
                if name == "csrf" && !csrf_checked {
                    signed_in.check_csrf(&text)?;
                    csrf_checked = true;
                }
                form.fields.insert(name, text);
            }
            Some(file_name) => {
                if !csrf_checked {
                    return Err(WebError::csrf());
                }
                let Some(&(_, max, says)) = files.iter().find(|(n, _, _)| *n == name) else {
                    return Err(WebError::bad_request(format!(
                        "The form sent a file as {name:?}, which this page does not take."
                    )));
                };
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| refused(e, says))? {
                    if bytes.len() + chunk.len() > max {
                        return Err(WebError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "REQ0003",
                            format!("The file {file_name} is too large: {says}."),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                // A file input left empty still sends a part, with no name and no bytes.
                if file_name.is_empty() && bytes.is_empty() {
                    continue;
                }
                let plain = file_name
                    .rsplit(['/', '\\'])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                form.files.insert(
                    name,
                    UploadedFile {
                        file_name: plain,
                        bytes,
                    },
                );
            }
        }
    }
    if !csrf_checked {
        return Err(WebError::csrf());
    }
    Ok(form)
}
