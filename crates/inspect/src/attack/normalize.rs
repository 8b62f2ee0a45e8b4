//! Normalisation of user-controlled values before attack matching.
//!
//! Attackers hide payloads behind encodings the backend will undo: repeated percent-encoding,
//! IIS `%uXXXX`, overlong UTF-8 (`%c0%af` for `/`), HTML entities, JavaScript escapes,
//! Unicode compatibility forms (fullwidth `＜script＞`), null bytes, SQL comments inside
//! keywords and shell quoting inside command names. Each helper here undoes one of these so
//! the detectors can be written against the plain form. Three *views* are produced:
//!
//! * **text**: fully decoded, NFKC-normalised, null bytes removed, lower-cased;
//! * **code**: text with SQL/C/shell comments replaced by a space and whitespace collapsed,
//!   for SQL, PHP and JavaScript rules (`SEL/**/ECT` → `sel ect` is not helped, but
//!   `union/**/select` → `union select` is);
//! * **cmd**: text with shell quoting and empty variable expansions removed
//!   (`c''u"r"l`, `c${x}url`, `\ls` → `curl`, `ls`) and `$IFS` turned into a space.
//!
//! Every transformation is a single linear pass; the decode loop is capped.

use std::borrow::Cow;

use regex::Regex;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use crate::InspectError;

/// How many times percent/entity/escape decoding is repeated at most (double and triple
/// encoding are common evasions; more than four layers is never legitimate).
const MAX_DECODE_ROUNDS: usize = 4;

/// Decodes `%XX` and `%uXXXX` once; with `plus_as_space`, `+` becomes a space (query strings
/// and forms). Overlong UTF-8 sequences for ASCII characters are folded to the character.
pub(crate) fn percent_decode(input: &str, plus_as_space: bool) -> Cow<'_, str> {
    let bytes = input.as_bytes();
    if !(bytes.contains(&b'%') || plus_as_space && bytes.contains(&b'+')) {
        return Cow::Borrowed(input);
    }
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (hex_at(bytes, i + 1), hex_at(bytes, i + 2)) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            if matches!(bytes.get(i + 1), Some(b'u' | b'U')) {
                let digits: Option<Vec<u8>> = (2..6).map(|k| hex_at(bytes, i + k)).collect();
                if let Some(d) = digits {
                    let cp = d.iter().fold(0u32, |acc, v| acc << 4 | u32::from(*v));
                    if let Some(c) = char::from_u32(cp) {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    i += 6;
                    continue;
                }
            }
        } else if b == b'+' && plus_as_space {
            out.push(b' ');
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(utf8_folding_overlong(&out))
}

fn hex_at(bytes: &[u8], i: usize) -> Option<u8> {
    let b = *bytes.get(i)?;
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Converts bytes to a string, folding overlong encodings of ASCII characters (`C0 AF` → `/`,
/// `E0 80 AE` → `.`), which strict UTF-8 decoding would otherwise turn into replacement
/// characters and so hide `../` from the traversal detector.
fn utf8_folding_overlong(bytes: &[u8]) -> String {
    if std::str::from_utf8(bytes).is_ok() {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut folded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let is_cont = |b: Option<&u8>| b.is_some_and(|b| (0x80..=0xbf).contains(b));
    while i < bytes.len() {
        let b = bytes[i];
        if (b == 0xc0 || b == 0xc1) && is_cont(bytes.get(i + 1)) {
            let n = bytes[i + 1];
            folded.push(((b & 0x1f) << 6) | (n & 0x3f));
            i += 2;
        } else if b == 0xe0
            && bytes.get(i + 1).is_some_and(|n| (0x80..=0x81).contains(n))
            && is_cont(bytes.get(i + 2))
        {
            folded.push(((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f));
            i += 3;
        } else {
            folded.push(b);
            i += 1;
        }
    }
    String::from_utf8_lossy(&folded).into_owned()
}

/// Decodes HTML character references: the common named ones and numeric `&#NN;` /
/// `&#xHH;` (the trailing `;` is optional, as browsers accept it without).
pub(crate) fn html_entity_decode(input: &str) -> Cow<'_, str> {
    if !input.contains('&') {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some((c, used)) = decode_entity(after) {
            out.push(c);
            rest = &after[used..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn decode_entity(after_amp: &str) -> Option<(char, usize)> {
    let bytes = after_amp.as_bytes();
    if bytes.first() == Some(&b'#') {
        let (radix, start) = if matches!(bytes.get(1), Some(b'x' | b'X')) {
            (16, 2)
        } else {
            (10, 1)
        };
        let digits = bytes[start..]
            .iter()
            .take(8)
            .take_while(|b| (**b as char).is_digit(radix))
            .count();
        if digits == 0 {
            return None;
        }
        let value = u32::from_str_radix(&after_amp[start..start + digits], radix).ok()?;
        let mut used = start + digits;
        if bytes.get(used) == Some(&b';') {
            used += 1;
        }
        return Some((char::from_u32(value).unwrap_or('\u{fffd}'), used));
    }
    let name_len = bytes
        .iter()
        .take(12)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = &after_amp[..name_len];
    let c = match name.to_ascii_lowercase().as_str() {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "tab" => '\t',
        "newline" => '\n',
        "colon" => ':',
        "semi" => ';',
        "comma" => ',',
        "period" => '.',
        "sol" => '/',
        "bsol" => '\\',
        "lpar" => '(',
        "rpar" => ')',
        "lbrace" | "lcub" => '{',
        "rbrace" | "rcub" => '}',
        "lsqb" | "lbrack" => '[',
        "rsqb" | "rbrack" => ']',
        "excl" => '!',
        "num" => '#',
        "dollar" => '$',
        "percnt" => '%',
        "lowbar" => '_',
        "equals" => '=',
        "plus" => '+',
        "grave" => '`',
        "quest" => '?',
        "vert" | "verbar" => '|',
        "ast" => '*',
        _ => return None,
    };
    let mut used = name_len;
    if bytes.get(used) == Some(&b';') {
        used += 1;
    }
    Some((c, used))
}

/// Decodes JavaScript/JSON style escapes `\uXXXX`, `\u{X..}` and `\xHH`, which browsers and
/// Node.js undo before evaluating (`c\u006fnsole`).
pub(crate) fn js_unescape(input: &str) -> Cow<'_, str> {
    if !input.contains("\\u") && !input.contains("\\x") && !input.contains("\\U") {
        return Cow::Borrowed(input);
    }
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut copied_to = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' {
            let kind = bytes[i + 1];
            let decoded = match kind {
                b'u' | b'U' if bytes.get(i + 2) == Some(&b'{') => {
                    let close = input[i + 3..].find('}').filter(|n| (1..=6).contains(n));
                    close.and_then(|n| {
                        u32::from_str_radix(&input[i + 3..i + 3 + n], 16)
                            .ok()
                            .and_then(char::from_u32)
                            .map(|c| (c, n + 4))
                    })
                }
                b'u' | b'U' => input
                    .get(i + 2..i + 6)
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
                    .map(|c| (c, 6)),
                b'x' => input
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .map(|b| (char::from(b), 4)),
                _ => None,
            };
            if let Some((c, used)) = decoded {
                out.push_str(&input[copied_to..i]);
                out.push(c);
                i += used;
                copied_to = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&input[copied_to..]);
    Cow::Owned(out)
}

/// [`BYTE_CLASS`] bit: a byte that starts an encoding (`%`, `&`, `\\`) or NUL.
const DECODE: u8 = 1;
/// [`BYTE_CLASS`] bit: `+`, a space in forms.
const PLUS: u8 = 2;
/// [`BYTE_CLASS`] bit: an ASCII upper-case letter.
const UPPER: u8 = 4;
/// [`BYTE_CLASS`] bit: a byte of a non-ASCII character.
const NON_ASCII: u8 = 8;

/// What each byte value means for the text view.
const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'%' | b'&' | b'\\' | 0 => DECODE,
            b'+' => PLUS,
            b'A'..=b'Z' => UPPER,
            0x80.. => NON_ASCII,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// The fully decoded, lower-cased text view of a raw value. The result is `raw` itself
/// when nothing changes (most API values: ids, dates, lower-case words), else written into
/// `scratch`, a buffer reused across the values of a request so that lower-casing a
/// capitalised name does not allocate.
pub(crate) fn text_view<'s>(raw: &'s str, plus_as_space: bool, scratch: &'s mut String) -> &'s str {
    // One table lookup per byte instead of a chain of comparisons: this loop sees every
    // byte of every value.
    let mut class = 0u8;
    for &b in raw.as_bytes() {
        class |= BYTE_CLASS[usize::from(b)];
    }
    let decode = class & DECODE != 0 || (plus_as_space && class & PLUS != 0);
    let (upper, non_ascii) = (class & UPPER != 0, class & NON_ASCII != 0);
    scratch.clear();
    if !decode {
        if !non_ascii {
            if !upper {
                return raw;
            }
            scratch.push_str(raw);
            scratch.make_ascii_lowercase();
            return scratch;
        }
        // Without `%`, `&`, `\\` or NUL the decode passes change nothing; names like
        // "Siobhán" are already NFKC, which the quick check answers without allocating.
        if is_nfkc_quick(raw.chars()) == IsNormalized::Yes {
            scratch.push_str(&raw.to_lowercase());
        } else {
            scratch.push_str(&raw.nfkc().collect::<String>().to_lowercase());
        }
        return scratch;
    }
    let mut current: String = raw.to_owned();
    for round in 0..MAX_DECODE_ROUNDS {
        let step1 = percent_decode(&current, plus_as_space && round == 0);
        let step2 = js_unescape(&step1);
        let step3 = html_entity_decode(&step2);
        if step3 == current.as_str() {
            break;
        }
        current = step3.into_owned();
    }
    if current.contains('\0') {
        current.retain(|c| c != '\0');
    }
    if !current.is_ascii() {
        current = current.nfkc().collect();
    }
    scratch.push_str(&current.to_lowercase());
    scratch
}

/// Whether `b` is what the ASCII `\s` of the detectors matches.
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// Whether `text` has a tab, CR, LF (with `vertical`, also VT or FF) or two spaces in a
/// row: the cases where collapsing whitespace changes something.
fn needs_collapse(text: &[u8], vertical: bool) -> bool {
    text.iter()
        .any(|&b| matches!(b, b'\n' | b'\t' | b'\r') || (vertical && matches!(b, 0x0b | 0x0c)))
        || text.windows(2).any(|w| w == b"  ")
}

/// Replaces every run of ASCII whitespace by one space (the regex `\s+` → ` `), and drops
/// the characters for which `drop` is true first (so `a ' b` reads `a b`), in one pass.
fn collapse_whitespace(text: &str, drop: impl Fn(u8) -> bool) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut in_space = false;
    for &b in text.as_bytes() {
        if drop(b) {
            continue;
        }
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b);
            in_space = false;
        }
    }
    // Only ASCII bytes were dropped or replaced, so the result is still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Compiled helpers for the code and command views.
pub(crate) struct ViewBuilder {
    comments: Regex,
    shell_vars: Regex,
    shell_ifs: Regex,
    shell_shell: Regex,
}

impl ViewBuilder {
    pub(crate) fn new() -> Result<Self, InspectError> {
        let compile = |id: &str, pattern: &str| {
            Regex::new(&crate::pattern::ascii_escapes(pattern)).map_err(|source| {
                InspectError::Pattern {
                    id: id.to_owned(),
                    source,
                }
            })
        };
        Ok(Self {
            // `/*!50000select*/` keeps its content (MySQL executes it), plain comments vanish;
            // `-- ` and `#` comments run to the end of the line.
            comments: compile(
                "normalize.comments",
                r"/\*!\d*|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/|/\*.*$|\*/|--[^\n]*|#[^\n{]*|(?:^|\s)//[^\n]*",
            )?,
            shell_vars: compile(
                "normalize.shell_vars",
                r"\$\{[a-z_][a-z0-9_]*\}|\$[a-z_][a-z0-9_]*|\$[@*!#?]|[\\'\x22^]",
            )?,
            shell_ifs: compile("normalize.shell_ifs", r"\$\{ifs\}|\$ifs\b")?,
            shell_shell: compile("normalize.shell_shell", r"\$\{shell\}|\$shell\b")?,
        })
    }

    /// The code view: comments replaced by a space, whitespace collapsed.
    pub(crate) fn code_view<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let has_comment = bytes.contains(&b'#')
            || bytes
                .windows(2)
                .any(|w| matches!(w, [b'/', b'*'] | [b'*', b'/'] | [b'-', b'-']));
        let stripped = if has_comment {
            self.comments.replace_all(text, " ")
        } else {
            Cow::Borrowed(text)
        };
        if needs_collapse(stripped.as_bytes(), true) {
            Cow::Owned(collapse_whitespace(&stripped, |_| false))
        } else {
            stripped
        }
    }

    /// The command view: shell quoting and variable tricks removed.
    pub(crate) fn cmd_view<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        if !bytes
            .iter()
            .any(|b| matches!(b, b'$' | b'\\' | b'\'' | b'"' | b'^'))
        {
            return self.code_view_ws(text);
        }
        if !bytes.contains(&b'$') {
            // Without `$` the variable passes change nothing and only quoting goes.
            return Cow::Owned(collapse_whitespace(text, |b| {
                matches!(b, b'\\' | b'\'' | b'"' | b'^')
            }));
        }
        let ifs = self.shell_ifs.replace_all(text, " ");
        let shell = self.shell_shell.replace_all(&ifs, "sh");
        let stripped = self.shell_vars.replace_all(&shell, "");
        Cow::Owned(collapse_whitespace(&stripped, |_| false))
    }

    /// The path view: backslashes become slashes, `/./` and repeated slashes collapse, so
    /// `/etc/./passwd`, `/etc//passwd` and `\\etc\\passwd` all read `/etc/passwd`.
    pub(crate) fn path_view<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        // Byte-window scans: cheaper than substring searches on the short values this sees.
        let changes = bytes.contains(&b'\\')
            || bytes.windows(2).any(|w| w == b"//")
            || bytes.windows(3).any(|w| w == b"/./");
        if !changes {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            let c = if c == '\\' { '/' } else { c };
            if c == '/' && out.ends_with('/') {
                continue;
            }
            if c == '/' && out.ends_with("/.") {
                out.pop();
                continue;
            }
            out.push(c);
        }
        Cow::Owned(out)
    }

    fn code_view_ws<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if needs_collapse(text.as_bytes(), false) {
            Cow::Owned(collapse_whitespace(text, |_| false))
        } else {
            Cow::Borrowed(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_view(raw: &str, plus_as_space: bool) -> String {
        super::text_view(raw, plus_as_space, &mut String::new()).to_owned()
    }

    #[test]
    fn double_percent_encoding_is_undone() {
        assert_eq!(text_view("%252e%252e%252f", false), "../");
    }

    #[test]
    fn overlong_utf8_slash_is_folded() {
        assert_eq!(text_view("..%c0%af..%c0%afetc", false), "../../etc");
    }

    #[test]
    fn iis_unicode_escape_and_fullwidth_are_normalised() {
        assert_eq!(text_view("%uff1cscript%uff1e", false), "<script>");
    }

    #[test]
    fn entities_without_semicolon_decode() {
        assert_eq!(
            text_view("javascript&#10:x&#x3C;", false),
            "javascript\n:x<"
        );
    }

    #[test]
    fn plus_is_space_only_in_forms() {
        assert_eq!(text_view("a+b", true), "a b");
        assert_eq!(text_view("a+b", false), "a+b");
    }

    #[test]
    fn views_strip_comments_and_quotes() {
        let views = ViewBuilder::new().unwrap();
        assert_eq!(views.code_view("union/**/select"), "union select");
        assert_eq!(views.code_view("/*!50000select*/ 1"), " select 1");
        assert_eq!(views.cmd_view("c${x}u'r'l $ifs x"), "curl x");
        assert_eq!(views.path_view("/etc/./passwd"), "/etc/passwd");
        assert_eq!(views.path_view("..\\..\\\\windows"), "../../windows");
    }

    #[test]
    fn quote_only_command_view_matches_the_regex_passes() {
        let views = ViewBuilder::new().unwrap();
        assert_eq!(
            views.cmd_view("c'a't  /etc/pa\"ss\"wd\t\n^x"),
            "cat /etc/passwd x"
        );
        assert_eq!(views.cmd_view("it's  a ' b"), "its a b");
        assert_eq!(views.cmd_view("a'\x0b\x0cb"), "a b");
    }

    #[test]
    fn text_view_lowercases_without_decoding_plain_values() {
        let mut scratch = String::new();
        assert_eq!(
            super::text_view("Siobhán O'Brien", false, &mut scratch),
            "siobhán o'brien"
        );
        assert_eq!(super::text_view("ＡＢＣ", false, &mut scratch), "abc");
        assert_eq!(super::text_view("Plain", false, &mut scratch), "plain");
        let raw = "already lower";
        assert!(std::ptr::eq(
            super::text_view(raw, false, &mut scratch),
            raw
        ));
    }
}
