//! Field bindings shared by certificate subject templates and card layouts: `{{user.display_name}}`,
//! optionally with a filter: `{{user.family_name | upper}}`, `{{device.expires_on | date:%d %b %Y}}`.

use crate::model::{Device, Timestamp, User};
use std::collections::BTreeMap;

/// The names of the user and device fields a template may bind (besides `user.attributes.*`).
pub const FIELD_NAMES: [&str; 14] = [
    "user.uid",
    "user.given_name",
    "user.family_name",
    "user.display_name",
    "user.email",
    "user.upn",
    "user.employee_id",
    "user.department",
    "user.title",
    "user.groups",
    "device.id",
    "device.serial",
    "device.issued_on",
    "device.expires_on",
];

/// One field's value, or None when the field is unknown or has no value.
pub fn field(user: &User, device: Option<&Device>, name: &str) -> Option<String> {
    let value = match name {
        "user.uid" => user.uid.0.clone(),
        "user.given_name" => user.given_name.clone(),
        "user.family_name" => user.family_name.clone(),
        "user.display_name" => user.display_name.clone(),
        "user.email" => user.email.clone(),
        "user.upn" => user.upn.clone(),
        "user.employee_id" => user.employee_id.clone(),
        "user.department" => user.department.clone(),
        "user.title" => user.title.clone(),
        "user.groups" => user.groups.join(", "),
        "device.id" => device?.id.0.clone(),
        "device.serial" => device?.serial.clone(),
        "device.issued_on" => device?.created_at.date(),
        "device.expires_on" => device?.expires_at?.date(),
        other => user
            .attributes
            .get(other.strip_prefix("user.attributes.")?)?
            .clone(),
    };
    Some(value)
}

/// Every field a template may bind, from a user and (when known) the device being issued.
pub fn fields(user: &User, device: Option<&Device>) -> BTreeMap<String, String> {
    let mut f: BTreeMap<String, String> = FIELD_NAMES
        .iter()
        .filter_map(|name| Some((name.to_string(), field(user, device, name)?)))
        .collect();
    for (k, v) in &user.attributes {
        f.insert(format!("user.attributes.{k}"), v.clone());
    }
    f
}

/// Expands every `{{ name | filter }}` in `template`. Unknown names expand to the empty string;
/// an unterminated `{{` is kept as written.
pub fn expand(template: &str, fields: &BTreeMap<String, String>) -> String {
    expand_with(template, &|name| fields.get(name).cloned())
}

/// [`expand`] with values from `lookup`, for callers that compute only the fields a template uses.
pub fn expand_with(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&apply_with(&after[..end], lookup));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Evaluates one binding expression: `name` or `name | filter[:argument]`.
pub fn apply(expression: &str, fields: &BTreeMap<String, String>) -> String {
    apply_with(expression, &|name| fields.get(name).cloned())
}

fn apply_with(expression: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut parts = expression.split('|');
    let name = parts.next().unwrap_or("").trim();
    let mut value = lookup(name).unwrap_or_default();
    for filter in parts {
        let filter = filter.trim();
        let (fname, arg) = match filter.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (filter, None),
        };
        value = match fname {
            "upper" => value.to_uppercase(),
            "lower" => value.to_lowercase(),
            "initial" => value
                .chars()
                .next()
                .map(|c| format!("{c}."))
                .unwrap_or_default(),
            "date" => format_date(&value, arg.unwrap_or("%Y-%m-%d")),
            _ => value,
        };
    }
    value
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats a `YYYY-MM-DD` value with `%Y %m %d %b %B`-style directives (`%b` = `Nov`).
fn format_date(value: &str, pattern: &str) -> String {
    let parts: Vec<&str> = value.split('-').collect();
    let [y, m, d] = parts[..] else {
        return value.to_owned();
    };
    let Ok(month) = m.parse::<usize>() else {
        return value.to_owned();
    };
    let month_name = MONTHS.get(month.wrapping_sub(1)).copied().unwrap_or("");
    pattern
        .replace("%Y", y)
        .replace("%y", y.get(2..).unwrap_or(y))
        .replace("%m", m)
        .replace("%d", d)
        .replace("%b", month_name)
        .replace("%B", &month_name.to_uppercase())
}

/// `2027NOV24`, the PIV printed-information expiration format.
pub fn piv_printed_date(t: Timestamp) -> String {
    format_date(&t.date(), "%Y%B%d")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> BTreeMap<String, String> {
        [
            ("user.display_name", "Jane Doe"),
            ("device.expires_on", "2027-11-24"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn expands_names_filters_and_dates() {
        assert_eq!(expand("CN={{user.display_name}}", &f()), "CN=Jane Doe");
        assert_eq!(expand("{{ user.display_name | upper }}", &f()), "JANE DOE");
        assert_eq!(
            expand("{{device.expires_on | date:%d %b %Y}}", &f()),
            "24 Nov 2027"
        );
        assert_eq!(expand("x{{nope}}y", &f()), "xy");
        assert_eq!(expand("open {{ never closed", &f()), "open {{ never closed");
        assert_eq!(piv_printed_date(Timestamp(1_827_014_400)), "2027NOV24");
    }
}
