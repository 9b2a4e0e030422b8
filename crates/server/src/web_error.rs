//! Errors at the HTTP edge: a stable code, a sentence for a person and an operation id; the
//! internals go to the log under the same operation id, never to the browser.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::ports::StoreError;
use tessera_core::{CoreError, ErrorCode};

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub operation: String,
    /// Not signed in: the browser goes to the sign-in page instead of an error page.
    pub sign_in: bool,
    /// The browser goes here instead (a step the operator owes first, such as a new password).
    pub redirect: Option<&'static str>,
    /// Where the operator goes on from here (the error page links to it): address and text.
    pub next: Option<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    code: &'a str,
    message: &'a str,
    operation: &'a str,
    next: Option<(&'static str, &'static str)>,
    /// The portal page the request came from, for **Go back** (see [`crate::back_link`]).
    back: Option<String>,
}

fn operation_id() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 8];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            operation: operation_id(),
            sign_in: false,
            redirect: None,
            next: None,
        }
    }

    /// Sends the browser to `to` (see [`WebError::redirect`](Self::redirect)).
    pub fn redirect(to: &'static str) -> Self {
        Self {
            redirect: Some(to),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "AUTH0004",
                "Finish signing in first: change your one-time password or enrol your authenticator.",
            )
        }
    }

    pub fn sign_in() -> Self {
        Self {
            sign_in: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "AUTH0002", "Please sign in.")
        }
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AUTH0003",
            "This form has expired. Go back, reload the page and try again.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::Invalid.as_str(),
            message,
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound.as_str(),
            format!("{what} was not found."),
        )
    }

    pub fn from_store(e: StoreError) -> Self {
        Self::from(CoreError::from(e))
    }

    /// With the operation id of the use case that failed (an issuance job, for instance).
    pub fn with_operation(mut self, operation: &str) -> Self {
        self.operation = operation.to_owned();
        self
    }
}

impl From<CoreError> for WebError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        let status = match code {
            ErrorCode::Invalid
            | ErrorCode::Lifecycle
            | ErrorCode::ImportRefused
            | ErrorCode::Photo
            | ErrorCode::FingerprintsMalformed
            | ErrorCode::FascNCodes => StatusCode::BAD_REQUEST,
            ErrorCode::UserHasCards
            | ErrorCode::ManagedElsewhere
            | ErrorCode::UserDisabled
            | ErrorCode::FingerprintsRequired => StatusCode::CONFLICT,
            ErrorCode::Directory => StatusCode::BAD_GATEWAY,
            ErrorCode::NotInStock => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden | ErrorCode::ApprovalRequired => StatusCode::FORBIDDEN,
            ErrorCode::Card | ErrorCode::Ca | ErrorCode::Print | ErrorCode::Station => {
                StatusCode::BAD_GATEWAY
            }
            ErrorCode::Store | ErrorCode::HandoverLost => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Changed
            | ErrorCode::JobStep
            | ErrorCode::UserIssuanceInProgress
            | ErrorCode::PrinterBusy
            | ErrorCode::JobFinished => StatusCode::CONFLICT,
            // The card is not acceptable as it is: a request about it cannot succeed unchanged.
            ErrorCode::Attestation | ErrorCode::ForeignCard | ErrorCode::CardLacksFeature => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            // A FIPS 201 object cannot be made from the holder's data or signed: asking again
            // unchanged cannot succeed.
            ErrorCode::CardDataObject => StatusCode::UNPROCESSABLE_ENTITY,
            // A PIN the rules refuse: the form is fine, its value is not.
            ErrorCode::PinLength
            | ErrorCode::PinNotDigits
            | ErrorCode::PinFactory
            | ErrorCode::PinWeak
            | ErrorCode::PinMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            // The card, the station or the printer said no, or is not there.
            ErrorCode::NoCard
            | ErrorCode::CardStatus
            | ErrorCode::CardMalformed
            | ErrorCode::NotPiv
            | ErrorCode::ManagementKeyRejected
            | ErrorCode::WrongPin
            | ErrorCode::PinBlocked
            | ErrorCode::WrongPuk
            | ErrorCode::StationNotConnected
            | ErrorCode::ReaderNotFound
            | ErrorCode::PrinterRefused => StatusCode::BAD_GATEWAY,
            // The card is someone's, or another job's, or not the one asked about.
            ErrorCode::CardBelongsToDevice | ErrorCode::CardInUse | ErrorCode::CardExchanged => {
                StatusCode::CONFLICT
            }
            ErrorCode::LayoutUnknown | ErrorCode::PolicyUnknown => StatusCode::NOT_FOUND,
            ErrorCode::PrinterNotFound
            | ErrorCode::Render
            | ErrorCode::PrinterNotConfigured
            | ErrorCode::LayoutNotAllowed
            | ErrorCode::PolicyNotAllowed
            | ErrorCode::TemporaryNotAllowed
            | ErrorCode::TemporaryTooLong => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let mut err = Self::new(status, code.as_str(), sentence(&e.to_string()));
        if code == ErrorCode::ApprovalRequired {
            err.next = Some(("/approvals", "Open the Approvals queue"));
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(operation = %err.operation, error = ?e, "request failed");
        } else {
            tracing::info!(operation = %err.operation, error = %e, "request refused");
        }
        err
    }
}

/// Capitalised and ending with a full stop.
pub fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out = match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Some(to) = self.redirect {
            return (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, to)],
                self.message,
            )
                .into_response();
        }
        if self.sign_in {
            return (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/login")],
                "Please sign in.",
            )
                .into_response();
        }
        let page = ErrorPage {
            code: self.code,
            message: &self.message,
            operation: &self.operation,
            next: self.next,
            back: crate::back_link::current(),
        };
        match page.render() {
            Ok(html) => (self.status, axum::response::Html(html)).into_response(),
            Err(_) => (self.status, format!("{} {}", self.code, self.message)).into_response(),
        }
    }
}
