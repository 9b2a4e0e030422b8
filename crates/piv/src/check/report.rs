//! The result of `tessera card check`: one [`ObjectReport`] per data object (or key) of the card,
//! each with a [`Status`] and the [`Finding`]s behind it, every finding naming the section of the
//! standard it judges by. The report is plain data (serialisable to JSON) and prints as text.

use serde::Serialize;
use std::fmt::Write as _;

/// How serious a finding is. Only errors make an object fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The object breaks a "shall" of the standard.
    Error,
    /// Allowed, but deprecated or unusual enough that an operator should know.
    Warning,
    /// What was read and verified.
    Info,
}

/// One sentence about an object, with the section of the standard it follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub text: String,
    /// e.g. `SP 800-73-4 part 1, 3.1.2`.
    pub reference: String,
}

/// The verdict on one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Present, and every check passed.
    Ok,
    /// The card does not hold the object.
    Missing,
    /// Present and well formed, but the signature the standard asks for is absent.
    Unsigned,
    /// At least one check failed.
    Failed,
    /// Not read: the object (or the key's test) needs the PIN, and none was given.
    SkippedNeedsPin,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Unsigned => "unsigned",
            Status::Failed => "failed",
            Status::SkippedNeedsPin => "skipped: needs PIN",
        }
    }
}

/// What the checker found about one data object or one slot key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    /// `chuid`, `ccc`, `piv_authentication_certificate`, `key_9a`, ...
    pub name: String,
    /// The object's tag (`5FC102`), or the key reference for a key (`9A`).
    pub tag: String,
    /// Whether the card must hold it (SP 800-73-4 part 1, table 3, "M").
    pub required: bool,
    pub status: Status,
    /// Length of the value read (the content of tag 53), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    pub findings: Vec<Finding>,
}

impl ObjectReport {
    pub(crate) fn new(name: &str, tag: &str, required: bool) -> Self {
        Self {
            name: name.into(),
            tag: tag.into(),
            required,
            status: Status::Ok,
            length: None,
            findings: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, reference: &str, text: impl Into<String>) {
        self.push(Severity::Error, reference, text);
    }

    pub(crate) fn warning(&mut self, reference: &str, text: impl Into<String>) {
        self.push(Severity::Warning, reference, text);
    }

    pub(crate) fn info(&mut self, reference: &str, text: impl Into<String>) {
        self.push(Severity::Info, reference, text);
    }

    pub(crate) fn push(&mut self, severity: Severity, reference: &str, text: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            text: text.into(),
            reference: reference.into(),
        });
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Sets the status from the findings: failed when there is an error, else `otherwise`.
    pub(crate) fn settle(&mut self, otherwise: Status) {
        self.status = if self.has_errors() {
            Status::Failed
        } else {
            otherwise
        };
    }

    /// Whether this object lets the card pass: ok, skipped, or missing but optional.
    pub fn passes(&self) -> bool {
        match self.status {
            Status::Ok | Status::SkippedNeedsPin => true,
            Status::Missing => !self.required,
            Status::Unsigned | Status::Failed => false,
        }
    }
}

/// The whole card's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The card's answer to reset, hex.
    pub atr: String,
    /// Whether a PIN was given (and verified) for the objects and keys that need it.
    pub pin_verified: bool,
    pub objects: Vec<ObjectReport>,
    /// Every present object passes and no required object is missing.
    pub passed: bool,
}

impl CheckReport {
    pub(crate) fn new(atr: &[u8], pin_verified: bool, objects: Vec<ObjectReport>) -> Self {
        let passed = objects.iter().all(ObjectReport::passes);
        Self {
            atr: hex::encode_upper(atr),
            pin_verified,
            objects,
            passed,
        }
    }

    /// The report of the object named `name`.
    pub fn object(&self, name: &str) -> Option<&ObjectReport> {
        self.objects.iter().find(|o| o.name == name)
    }

    /// The report as text, one block per object, for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "PIV card check (ATR {})", self.atr);
        for object in &self.objects {
            let required = if object.required { ", required" } else { "" };
            let length = object
                .length
                .map(|l| format!(", {l} bytes"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "\n{} ({}{}{}): {}",
                object.name,
                object.tag,
                length,
                required,
                object.status.as_str()
            );
            for f in &object.findings {
                let mark = match f.severity {
                    Severity::Error => "FAIL",
                    Severity::Warning => "warn",
                    Severity::Info => "  ok",
                };
                let _ = writeln!(out, "  {mark} {} [{}]", f.text, f.reference);
            }
        }
        let failing: Vec<&str> = self
            .objects
            .iter()
            .filter(|o| !o.passes())
            .map(|o| o.name.as_str())
            .collect();
        if failing.is_empty() {
            let _ = writeln!(out, "\nresult: passed");
        } else {
            let _ = writeln!(out, "\nresult: FAILED ({})", failing.join(", "));
        }
        out
    }
}
