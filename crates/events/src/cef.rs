//! ArcSight Common Event Format (CEF) lines, the alternative syslog message
//! format many SIEMs parse natively.
//!
//! `CEF:0|Vendor|Product|Version|Signature ID|Name|Severity|Extension`.
//! Header fields escape `\` and `|`; extension values escape `\`, `=` and
//! line breaks (as `\n` / `\r`), per the CEF specification. Keys are fixed
//! ASCII names chosen here, so they need no escaping.

use std::fmt::Write as _;

use crate::model::{Action, AuthOutcome, Severity};
use crate::ocsf::{Event, event_severity, http_activity};

/// Appends the header-field escaping of `value` to `out`.
pub fn escape_header(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            // Header fields cannot span lines; a line break would end the event.
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Appends the extension-value escaping of `value` to `out`.
pub fn escape_extension(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// CEF severity 0–10 for an OCSF severity.
pub fn cef_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

struct Line {
    text: String,
}

impl Line {
    fn header(signature_id: &str, name: &str, severity: Severity) -> Line {
        let mut text = String::with_capacity(512);
        text.push_str("CEF:0|Portcullis|Portcullis|");
        escape_header(env!("CARGO_PKG_VERSION"), &mut text);
        text.push('|');
        escape_header(signature_id, &mut text);
        text.push('|');
        escape_header(name, &mut text);
        let _ = write!(text, "|{}|", cef_severity(severity));
        Line { text }
    }

    fn ext(&mut self, key: &str, value: &str) {
        if !self.text.ends_with('|') {
            self.text.push(' ');
        }
        self.text.push_str(key);
        self.text.push('=');
        escape_extension(value, &mut self.text);
    }

    fn ext_opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.ext(key, value);
        }
    }
}

/// The CEF line for one event (no trailing newline).
pub fn cef_line(ev: &Event) -> String {
    let time = ev.time_ms().to_string();
    match ev {
        Event::Http(h) => {
            let (_, activity) = http_activity(&h.method);
            let name = format!("HTTP {activity}");
            let mut line = Line::header("4002", &name, event_severity(h));
            line.ext("rt", &time);
            line.ext("src", &h.client_ip.to_string());
            line.ext("spt", &h.client_port.to_string());
            line.ext("requestMethod", &h.method);
            let mut url = format!("{}://{}{}", h.scheme, h.host, h.path);
            if let Some(q) = &h.query {
                url.push('?');
                url.push_str(q);
            }
            line.ext("request", &url);
            line.ext_opt("requestClientApplication", h.user_agent.as_deref());
            line.ext(
                "act",
                match h.action {
                    Action::Allowed => "allowed",
                    Action::Denied => "denied",
                },
            );
            line.ext("outcome", &h.status.to_string());
            line.ext("in", &h.bytes_in.to_string());
            line.ext("out", &h.bytes_out.to_string());
            line.ext_opt("suser", h.actor.as_ref().map(|a| a.principal.as_str()));
            line.ext_opt("reason", h.reason.as_deref());
            line.ext("externalId", &h.request_id);
            line.text
        }
        Event::Authentication(a) => {
            let outcome = match a.outcome {
                AuthOutcome::Success => "success",
                AuthOutcome::Failure => "failure",
            };
            let name = format!("Authentication {outcome}");
            let mut line = Line::header("3002", &name, ev.severity());
            line.ext("rt", &time);
            line.ext("src", &a.client_ip.to_string());
            line.ext("spt", &a.client_port.to_string());
            line.ext("outcome", outcome);
            line.ext_opt("reason", a.failure_reason.as_deref());
            line.ext_opt("suser", a.principal.as_deref());
            line.ext("cs1Label", "authMethod");
            line.ext("cs1", a.method.as_str());
            if let Some(id) = &a.credential_id {
                line.ext("cs2Label", "credentialId");
                line.ext("cs2", id);
            }
            line.ext("externalId", &a.request_id);
            line.text
        }
        Event::Detection(d) => {
            let mut line = Line::header(&d.rule_id, &d.title, d.severity);
            line.ext("rt", &time);
            line.ext_opt("src", d.client_ip.map(|ip| ip.to_string()).as_deref());
            line.ext_opt("suser", d.principal.as_deref());
            line.ext_opt("msg", d.description.as_deref());
            if !d.actions_taken.is_empty() {
                line.ext("act", &d.actions_taken.join("; "));
            }
            let techniques: Vec<&str> = d
                .attacks
                .iter()
                .flat_map(|a| [&a.tactic, &a.technique, &a.sub_technique])
                .flatten()
                .map(|r| r.uid.as_str())
                .collect();
            if !techniques.is_empty() {
                line.ext("cs1Label", "attack");
                line.ext("cs1", &techniques.join(","));
            }
            if !d.request_ids.is_empty() {
                line.ext("cs2Label", "requestIds");
                line.ext("cs2", &d.request_ids.join(","));
            }
            line.ext("externalId", &d.finding_uid);
            line.text
        }
        Event::Lifecycle(l) => {
            let name = format!("Application lifecycle {}", l.kind);
            let mut line = Line::header("6002", &name, ev.severity());
            line.ext("rt", &time);
            line.ext("msg", &l.message);
            line.ext("cs1Label", "kind");
            line.ext("cs1", &l.kind);
            line.text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_extension_escaping_follow_the_cef_rules() {
        let mut header = String::new();
        escape_header("a|b\\c=d\ne", &mut header);
        assert_eq!(header, "a\\|b\\\\c=d e");
        let mut ext = String::new();
        escape_extension("a|b\\c=d\ne\rf", &mut ext);
        assert_eq!(ext, "a|b\\\\c\\=d\\ne\\rf");
    }

    #[test]
    fn lifecycle_line_has_the_seven_header_fields() {
        let ev = Event::Lifecycle(std::sync::Arc::new(crate::ocsf::LifecycleEvent {
            time_ms: 5,
            kind: "reload_failed".to_owned(),
            message: "bad = value|x".to_owned(),
        }));
        let line = cef_line(&ev);
        assert!(
            line.starts_with(&format!(
                "CEF:0|Portcullis|Portcullis|{}|6002|Application lifecycle reload_failed|5|rt=5 msg=bad \\= value|x",
                env!("CARGO_PKG_VERSION")
            )),
            "{line}"
        );
    }
}
