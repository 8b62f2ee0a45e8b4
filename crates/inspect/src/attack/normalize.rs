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

/// Byte-class bits (see [`BYTE_CLASS`]): what a byte's presence in a value tells the
/// detector before any decoding or matching is done.
pub(crate) mod class {
    /// A byte that starts an encoding (`%`, `&`, `\\`) or NUL: the text view must decode.
    pub const DECODE: u16 = 1;
    /// `+`, a space in forms.
    pub const PLUS: u16 = 2;
    /// An ASCII upper-case letter.
    pub const UPPER: u16 = 4;
    /// A byte of a non-ASCII character.
    pub const NON_ASCII: u16 = 8;
    /// A byte that makes the code, command or path view differ from the text view by
    /// itself: comment and shell-quoting characters (`#`, `$`, `\\`, `'`, `"`, `^`) and
    /// whitespace other than the space.
    pub const VIEW_BYTE: u16 = 16;
    /// A byte that changes a view only next to another one (`/*`, `*/`, `--`, two
    /// spaces, `//`, `/./`): `/`, `*`, `-` and the space.
    pub const VIEW_PAIR: u16 = 32;
    /// `/` or `:`: without either a value cannot name a host (SSRF).
    pub const URL: u16 = 64;
}

/// The class bits of each byte value.
pub(crate) const BYTE_CLASS: [u16; 256] = {
    use class::*;
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = match byte {
            b'%' | b'&' | 0 => DECODE,
            b'\\' => DECODE | VIEW_BYTE,
            b'+' => PLUS,
            b'A'..=b'Z' => UPPER,
            0x80.. => NON_ASCII,
            b'#' | b'$' | b'\'' | b'"' | b'^' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => VIEW_BYTE,
            b'*' | b'-' | b' ' => VIEW_PAIR,
            b'/' => VIEW_PAIR | URL,
            b':' => URL,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// The union of the class bits of every byte of `text` (the detector folds this into its
/// own per-byte table).
#[cfg(test)]
pub(crate) fn byte_classes(text: &str) -> u16 {
    text.bytes()
        .fold(0, |acc, b| acc | BYTE_CLASS[usize::from(b)])
}

/// Whether the text view of a value whose raw bytes have the classes `raw_class` has the
/// same non-letter bytes as the raw value (only ASCII letters may be lower-cased), so that
/// class and trigger bits computed on the raw bytes hold for the text view too.
pub(crate) fn text_keeps_non_letters(raw_class: u16, plus_as_space: bool) -> bool {
    raw_class & (class::DECODE | class::NON_ASCII) == 0
        && !(plus_as_space && raw_class & class::PLUS != 0)
}

/// The fully decoded, lower-cased text view of a raw value. The result is `raw` itself
/// when nothing changes (most API values: ids, dates, lower-case words), else written into
/// `scratch`, a buffer reused across the values of a request so that lower-casing a
/// capitalised name does not allocate.
#[cfg(test)]
pub(crate) fn text_view<'s>(raw: &'s str, plus_as_space: bool, scratch: &'s mut String) -> &'s str {
    text_view_classified(raw, byte_classes(raw), plus_as_space, scratch)
}

/// [`text_view`] for a caller that already has the raw value's [`byte_classes`] (the
/// detector computes them in the same pass as its single-byte triggers).
pub(crate) fn text_view_classified<'s>(
    raw: &'s str,
    raw_class: u16,
    plus_as_space: bool,
    scratch: &'s mut String,
) -> &'s str {
    scratch.clear();
    if text_keeps_non_letters(raw_class, plus_as_space) {
        if raw_class & class::UPPER == 0 {
            return raw;
        }
        scratch.push_str(raw);
        scratch.make_ascii_lowercase();
        return scratch;
    }
    let decode = raw_class & class::DECODE != 0 || (plus_as_space && raw_class & class::PLUS != 0);
    if !decode {
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

/// Whether the code, command and path views of `text` (whose [`byte_classes`] are
/// `text_class`) are all `text` itself: no comment, shell-quoting or path-folding syntax
/// and no whitespace to collapse. Checked against the view builders by the tests, since a
/// wrong `true` would scan the wrong form of the value.
pub(crate) fn views_equal_text(text: &str, text_class: u16) -> bool {
    if text_class & class::VIEW_BYTE != 0 {
        return false;
    }
    if text_class & class::VIEW_PAIR == 0 {
        return true;
    }
    let bytes = text.as_bytes();
    !bytes.windows(2).enumerate().any(|(i, w)| match w {
        [b'/', b'*'] | [b'*', b'/'] | [b'-', b'-'] | [b' ', b' '] | [b'/', b'/'] => true,
        [b'/', b'.'] => bytes.get(i + 2) == Some(&b'/'),
        _ => false,
    })
}

/// Which of the code, command and path views of a value differ from its text view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViewChanges {
    pub code: bool,
    pub cmd: bool,
    pub path: bool,
}

/// [`ViewChanges`] in one byte pass, with exactly the conditions under which
/// [`ViewBuilder::code_view`], [`ViewBuilder::cmd_view`] and [`ViewBuilder::path_view`] do
/// not return `text` itself, so that the detector builds only the views that differ (each
/// builder alone rescans the value several times).
pub(crate) fn view_changes(text: &str) -> ViewChanges {
    let (mut comment, mut collapse, mut vertical, mut shell, mut path) =
        (false, false, false, false, false);
    let (mut prev, mut prev2) = (0u8, 0u8);
    for &b in text.as_bytes() {
        match b {
            b'#' => comment = true,
            b'\n' | b'\t' | b'\r' => collapse = true,
            0x0b | 0x0c => vertical = true,
            b'$' | b'\'' | b'"' | b'^' => shell = true,
            b'\\' => {
                shell = true;
                path = true;
            }
            b'*' if prev == b'/' => comment = true,
            b'/' if prev == b'*' => comment = true,
            b'-' if prev == b'-' => comment = true,
            b' ' if prev == b' ' => collapse = true,
            b'/' if prev == b'/' || (prev == b'.' && prev2 == b'/') => path = true,
            _ => {}
        }
        prev2 = prev;
        prev = b;
    }
    ViewChanges {
        code: comment || collapse || vertical,
        cmd: shell || collapse,
        path,
    }
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
        // Bytes, not chars: only ASCII bytes are compared, dropped or replaced, so the
        // result is still UTF-8, and a byte loop is several times cheaper.
        let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
        for &b in bytes {
            let b = if b == b'\\' { b'/' } else { b };
            if b == b'/' && out.ends_with(b"/") {
                continue;
            }
            if b == b'/' && out.ends_with(b"/.") {
                out.pop();
                continue;
            }
            out.push(b);
        }
        Cow::Owned(String::from_utf8(out).unwrap_or_default())
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
    fn views_equal_text_only_when_every_view_builder_returns_the_text() {
        let views = ViewBuilder::new().unwrap();
        let samples = [
            "plain words",
            "2024-03-15t10:20:30z",
            "8f14e45f-ceea-467f-a0e4-000000000001",
            "mozilla/5.0 (x11; linux x86_64; rv:125.0) gecko/20100101 firefox/125.0",
            "user1@example.com",
            "a-b-c d/e.f",
            "union select 1",
            "it's",
            "say \"hi\"",
            "a  b",
            "a\tb",
            "a\nb",
            "x -- y",
            "x /* y */",
            "# heading",
            "https://example.com/a",
            "/etc/./passwd",
            "..\\windows",
            "${ifs}",
            "a^b",
            "a\x0bb",
        ];
        let mut equal = 0;
        for text in samples {
            if views_equal_text(text, byte_classes(text)) {
                equal += 1;
                assert!(
                    matches!(views.code_view(text), Cow::Borrowed(v) if v == text),
                    "{text:?}"
                );
                assert!(
                    matches!(views.cmd_view(text), Cow::Borrowed(v) if v == text),
                    "{text:?}"
                );
                assert!(
                    matches!(views.path_view(text), Cow::Borrowed(v) if v == text),
                    "{text:?}"
                );
            } else {
                let differs = views.code_view(text) != text
                    || views.cmd_view(text) != text
                    || views.path_view(text) != text;
                assert!(differs, "{text:?} was routed off the fast path for nothing");
            }
        }
        assert_eq!(equal, 7);
    }

    #[test]
    fn view_changes_match_the_view_builders() {
        let views = ViewBuilder::new().unwrap();
        for text in [
            "plain",
            "it's",
            "a  b",
            "a\tb",
            "a\x0cb",
            "x -- y",
            "x /* y */",
            "*/",
            "# h",
            "https://example.com/a",
            "/etc/./passwd",
            "/./",
            "..\\windows",
            "${ifs}",
            "a^b",
            "*//x",
            "-/-",
        ] {
            let changes = view_changes(text);
            let borrowed = |v: Cow<'_, str>| matches!(v, Cow::Borrowed(_));
            assert_eq!(
                !changes.code,
                borrowed(views.code_view(text)),
                "code {text:?}"
            );
            assert_eq!(!changes.cmd, borrowed(views.cmd_view(text)), "cmd {text:?}");
            assert_eq!(
                !changes.path,
                borrowed(views.path_view(text)),
                "path {text:?}"
            );
        }
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
