//! Field bindings shared by certificate subject templates and card layouts: `{{user.display_name}}`,
//! optionally with a filter: `{{user.family_name | upper}}`, `{{device.expires_on | date:%d %b %Y}}`.

use crate::model::{Device, Timestamp, User};
use std::collections::BTreeMap;

/// The fields a template may bind, from a user and (when known) the device being issued.
pub fn fields(user: &User, device: Option<&Device>) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        f.insert(k.to_owned(), v.to_owned());
    };
    put("user.uid", user.uid.as_str());
    put("user.given_name", &user.given_name);
    put("user.family_name", &user.family_name);
    put("user.display_name", &user.display_name);
    put("user.email", &user.email);
    put("user.upn", &user.upn);
    put("user.employee_id", &user.employee_id);
    put("user.department", &user.department);
    put("user.title", &user.title);
    put("user.groups", &user.groups.join(", "));
    for (k, v) in &user.attributes {
        put(&format!("user.attributes.{k}"), v);
    }
    if let Some(d) = device {
        put("device.id", d.id.as_str());
        put("device.serial", &d.serial);
        put("device.issued_on", &d.created_at.date());
        if let Some(e) = d.expires_at {
            put("device.expires_on", &e.date());
        }
    }
    f
}

/// Expands every `{{ name | filter }}` in `template`. Unknown names expand to the empty string;
/// an unterminated `{{` is kept as written.
pub fn expand(template: &str, fields: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&apply(&after[..end], fields));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Evaluates one binding expression: `name` or `name | filter[:argument]`.
pub fn apply(expression: &str, fields: &BTreeMap<String, String>) -> String {
    let mut parts = expression.split('|');
    let name = parts.next().unwrap_or("").trim();
    let mut value = fields.get(name).cloned().unwrap_or_default();
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
