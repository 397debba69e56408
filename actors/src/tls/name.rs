//! A certificate's subject as Java prints it (`X500Principal.getName()`, RFC 2253): the x509
//! ACL scheme's id, so ACLs written for Apache ZooKeeper match here.

use x509_parser::asn1_rs::{Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

/// Attribute types RFC 2253 names by keyword; every other type is written as its OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject DN of a DER certificate in RFC 2253 form: last RDN first, `,` between RDNs,
/// `+` inside one, keyword types with their string value escaped, other types as
/// `OID=#hex-of-DER`.
pub fn subject_dn(der: &[u8]) -> Result<String, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("bad client certificate: {e}"))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| rdn.iter().map(ava).collect::<Vec<_>>().join("+"))
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// One `type=value`.
fn ava(a: &AttributeTypeAndValue) -> String {
    let oid = a.attr_type().to_id_string();
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    match (keyword, string_value(a)) {
        (Some(k), Some(v)) => format!("{k}={}", escape(&v)),
        (k, _) => format!("{}=#{}", k.unwrap_or(&oid), der_hex(a)),
    }
}

/// The value of a directory string type, decoded.
fn string_value(a: &AttributeTypeAndValue) -> Option<String> {
    let v = a.attr_value();
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(v.data).ok().map(str::to_string)
        }
        Tag::T61String => Some(v.data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = v
                .data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The value's whole DER encoding in lowercase hex.
fn der_hex(a: &AttributeTypeAndValue) -> String {
    let der = a
        .attr_value()
        .to_der_vec()
        .unwrap_or_else(|_| a.attr_value().data.to_vec());
    der.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2253 escaping as Java does it: the special characters anywhere, a leading space or
/// `#` and a trailing space, NUL as `\00`.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn cert(dn: &[(DnType, &str)]) -> Vec<u8> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_in_java_order_and_escaping() {
        let der = cert(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Acme, Inc."),
            (DnType::CommonName, " kazoo+1 "),
        ]);
        assert_eq!(
            subject_dn(&der).unwrap(),
            "CN=\\ kazoo\\+1\\ ,O=Acme\\, Inc.,C=US"
        );
        let der = cert(&[(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "a@b",
        )]);
        assert_eq!(
            subject_dn(&der).unwrap(),
            "1.2.840.113549.1.9.1=#0c03614062"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(subject_dn(b"not a certificate").is_err());
        let der = cert(&[(DnType::CommonName, "x")]);
        for cut in [1, der.len() / 2, der.len() - 1] {
            assert!(subject_dn(&der[..cut]).is_err());
        }
    }
}
