//! Distinguished names (RFC 4514): the value of a group's first RDN is its name (`cn=Finance,
//! ou=groups,...` is "Finance"), and a group's `member` values are matched with people's DNs in a
//! normal form, since a directory may spell the same DN with other case or spacing.

/// One `attribute=value` of an RDN, the value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ava {
    pub attr: String,
    pub value: String,
}

/// Splits a DN into its RDNs (each one or more `attr=value`, joined by `+`), first RDN first.
/// Escapes (`\,`, `\2C`) are resolved; unescaped spaces around values are dropped. The error says
/// what is wrong.
pub fn parse(dn: &str) -> Result<Vec<Vec<Ava>>, String> {
    let mut rdns = Vec::new();
    if dn.trim().is_empty() {
        return Ok(rdns);
    }
    let mut rdn = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        let mut attr = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            if matches!(c, ',' | '+' | ';') {
                return Err(format!("{dn:?} has an RDN without '='"));
            }
            attr.push(c);
        }
        let attr = attr.trim().to_owned();
        if attr.is_empty() {
            return Err(format!("{dn:?} has an RDN without an attribute name"));
        }
        let mut bytes: Vec<u8> = Vec::new();
        // Unescaped spaces at the end of the value so far: they are not part of it.
        let mut trailing = 0;
        let mut started = false;
        let mut end = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let a = chars
                        .next()
                        .ok_or_else(|| format!("{dn:?} ends with a lone backslash"))?;
                    if a.is_ascii_hexdigit() {
                        let b = chars
                            .next()
                            .filter(char::is_ascii_hexdigit)
                            .ok_or_else(|| format!("{dn:?} has a broken \\XX escape"))?;
                        let pair: String = [a, b].iter().collect();
                        bytes.push(u8::from_str_radix(&pair, 16).expect("two hex digits"));
                    } else {
                        let mut buf = [0; 4];
                        bytes.extend_from_slice(a.encode_utf8(&mut buf).as_bytes());
                    }
                    trailing = 0;
                    started = true;
                }
                ',' | ';' | '+' => {
                    end = Some(c);
                    break;
                }
                ' ' if !started => {}
                _ => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    trailing = if c == ' ' { trailing + 1 } else { 0 };
                    started = true;
                }
            }
        }
        bytes.truncate(bytes.len() - trailing);
        let value = String::from_utf8(bytes)
            .map_err(|_| format!("{dn:?} has a value that is not UTF-8 text"))?;
        rdn.push(Ava { attr, value });
        match end {
            Some('+') => {}
            Some(_) => rdns.push(std::mem::take(&mut rdn)),
            None => {
                rdns.push(rdn);
                return Ok(rdns);
            }
        }
    }
}

/// The value of the first RDN: the name of a group (`cn=Finance,ou=groups,...` -> `Finance`).
pub fn first_rdn_value(dn: &str) -> Result<String, String> {
    let rdns = parse(dn)?;
    rdns.first()
        .and_then(|rdn| rdn.first())
        .map(|ava| ava.value.clone())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{dn:?} has no name"))
}

/// The DN in a form that compares equal for every spelling of the same name: attribute names
/// and values in lower case (the naming attributes of people and groups, `uid`, `cn`, `ou`, `dc`,
/// match without regard to case), no spaces around `=`, `,` and `+`, the parts of a
/// multi-valued RDN sorted.
pub fn normalize(dn: &str) -> Result<String, String> {
    let rdns = parse(dn)?;
    Ok(rdns
        .iter()
        .map(|rdn| {
            let mut avas: Vec<String> = rdn
                .iter()
                .map(|a| {
                    format!(
                        "{}={}",
                        a.attr.to_lowercase(),
                        ldap3::dn_escape(a.value.to_lowercase())
                    )
                })
                .collect();
            avas.sort();
            avas.join("+")
        })
        .collect::<Vec<_>>()
        .join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_value_is_unescaped() {
        assert_eq!(
            first_rdn_value("cn=Finance,ou=groups,dc=example,dc=org").unwrap(),
            "Finance"
        );
        assert_eq!(
            first_rdn_value("CN=Smith\\, John,OU=People,DC=corp").unwrap(),
            "Smith, John"
        );
        assert_eq!(
            first_rdn_value("cn=Caf\\C3\\A9 Team ,ou=g").unwrap(),
            "Café Team"
        );
        assert_eq!(first_rdn_value("cn=a+uid=b,dc=x").unwrap(), "a");
        assert_eq!(first_rdn_value("cn=\\ padded\\ ,dc=x").unwrap(), " padded ");
        assert!(first_rdn_value("").is_err());
        assert!(first_rdn_value("no equals sign").is_err());
        assert!(first_rdn_value("cn=bad\\").is_err());
        assert!(first_rdn_value("cn=bad\\C").is_err());
        assert!(first_rdn_value("cn=,dc=x").is_err());
    }

    #[test]
    fn spellings_of_one_dn_normalize_alike() {
        let a = normalize("uid=JDoe,ou=People,dc=Example,dc=org").unwrap();
        let b = normalize("UID=jdoe , OU=people,DC=example, DC=ORG").unwrap();
        let c = normalize("uid=jdo\\65,ou=people,dc=example,dc=org").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, "uid=jdoe,ou=people,dc=example,dc=org");
        assert_eq!(
            normalize("cn=b+uid=a,dc=x").unwrap(),
            normalize("uid=a+cn=b,dc=x").unwrap()
        );
        assert_ne!(
            normalize("cn=a\\,b,dc=x").unwrap(),
            normalize("cn=a,b=,dc=x").unwrap_or_default()
        );
    }
}
