//! Checksums and issuer checks that turn "looks like a card number / IBAN" into "is one".
//!
//! Regular expressions alone flag every long number (order ids, timestamps, phone numbers);
//! the Luhn check, known issuer prefixes and the IBAN mod-97 check remove almost all of
//! those false positives.

/// Luhn checksum over ASCII digits.
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether the digits start with a known payment-card issuer identification number and
/// have a length that issuer uses.
pub(crate) fn known_card_issuer(digits: &[u8]) -> bool {
    let len = digits.len();
    let prefix = |n: usize| -> u32 {
        digits
            .iter()
            .take(n)
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    let visa = p1 == 4 && matches!(len, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16;
    let amex = matches!(p2, 34 | 37) && len == 15;
    let discover =
        (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (622_126..=622_925).contains(&p6))
            && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&len);
    let diners =
        ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&len);
    let unionpay = p2 == 62 && (16..=19).contains(&len);
    let maestro = (matches!(p2, 50) || (56..=69).contains(&p2)) && (12..=19).contains(&len);
    visa || mastercard || amex || discover || jcb || diners || unionpay || maestro
}

/// Validates a candidate card number (digits with optional spaces or dashes).
pub(crate) fn is_card_number(candidate: &str) -> bool {
    let digits: Vec<u8> = candidate.bytes().filter(u8::is_ascii_digit).collect();
    (13..=19).contains(&digits.len()) && known_card_issuer(&digits) && luhn_valid(&digits)
}

/// Validates an IBAN (spaces allowed) with the ISO 13616 mod-97 check.
pub(crate) fn is_iban(candidate: &str) -> bool {
    let compact: Vec<u8> = candidate
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if !(15..=34).contains(&compact.len())
        || !compact[..2].iter().all(u8::is_ascii_alphabetic)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut remainder: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_changed_digits() {
        assert!(is_card_number("4111 1111 1111 1111"));
        assert!(is_card_number("5500-0000-0000-0004"));
        assert!(is_card_number("378282246310005"));
        assert!(!is_card_number("4111 1111 1111 1112"));
        // Luhn-valid but no known issuer prefix.
        assert!(!is_card_number("1111111111111117"));
    }

    #[test]
    fn iban_mod97() {
        assert!(is_iban("DE89 3704 0044 0532 0130 00"));
        assert!(is_iban("GB82WEST12345698765432"));
        assert!(!is_iban("DE89 3704 0044 0532 0130 01"));
        assert!(!is_iban("XX00"));
    }
}
