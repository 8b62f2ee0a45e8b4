//! OpenAPI positive security model for the Portcullis gateway.
//!
//! A spec (OpenAPI 3.0.x or 3.1.x, JSON or YAML) is compiled once at configuration load into an
//! [`ApiSpec`]: a segment trie for operation matching, a JSON Schema 2020-12 validator (linear-time
//! `regex` patterns, no remote references) for every parameter and request body, and a
//! declared-property graph for response filtering and mass-assignment refusal. The gateway then
//! calls [`ApiSpec::match_request`], [`ApiSpec::validate_request`] and
//! [`ApiSpec::filter_response`] on every request; none of them touches the filesystem.

mod body;
mod error;
mod fasthash;
mod loader;
mod params;
mod router;
mod shape;
mod violation;

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

pub use error::SpecError;
pub use violation::Violation;

use body::{MediaKind, essence, media_kind, range_covers, range_rank};
use loader::{Loader, Loc, Version};
use params::{CompiledParam, In, Kind, Style};
use router::{Found, Router};
use shape::{NodeId, ShapeBuilder, Shapes};

/// HTTP methods an OpenAPI path item may declare, in the order `allowed` lists them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const HEAD: usize = 5;
const GET: usize = 0;

/// Request header parameters OpenAPI says to ignore (they are described elsewhere).
const IGNORED_HEADERS: [&str; 3] = ["accept", "content-type", "authorization"];

/// A compiled OpenAPI document, shared read-only by every request.
pub struct ApiSpec {
    router: Router,
    paths: Vec<CompiledPath>,
    operations: Vec<CompiledOperation>,
    shapes: Shapes,
}

struct CompiledPath {
    template: String,
    param_names: Vec<String>,
    methods: [Option<usize>; 8],
}

struct CompiledOperation {
    operation_id: Option<String>,
    params: Vec<CompiledParam>,
    body: Option<CompiledBody>,
    responses: Vec<CompiledResponse>,
}

struct CompiledBody {
    required: bool,
    media: Vec<CompiledMedia>,
}

struct CompiledMedia {
    range: String,
    kind: MediaKind,
    coercion: Kind,
    validator: Option<jsonschema::Validator>,
    shape: Option<NodeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusKey {
    Exact(u16),
    Range(u16),
    Default,
}

struct CompiledResponse {
    status: StatusKey,
    /// Declared media ranges, with the shape of their schema when it has one.
    media: Vec<(String, Option<NodeId>)>,
}

/// The outcome of matching a request to the spec.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    /// The operation serving this method and path.
    Operation(OperationMatch<'a>),
    /// No path template matches.
    NotFound,
    /// A path matches but does not declare this method.
    MethodNotAllowed {
        /// Upper-case methods the path declares.
        allowed: Vec<String>,
    },
}

/// A matched operation.
#[derive(Debug, Clone)]
pub struct OperationMatch<'a> {
    pub operation_id: Option<&'a str>,
    /// The path template as written in the spec (`/users/{id}`), without the server prefix.
    pub path_template: &'a str,
    /// Path parameters by name, percent-decoded once.
    pub path_params: Vec<(&'a str, String)>,
    operation: usize,
}

/// What the gateway knows of a request when validating it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInput<'a> {
    /// The raw query string (without `?`).
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    /// The buffered body, if any.
    pub body: Option<&'a [u8]>,
    /// The body already parsed by the caller, if it was JSON.
    pub json: Option<&'a Value>,
}

/// Per-route strictness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Refuse body properties the schema does not declare, even without `additionalProperties:
    /// false` (and readOnly properties in requests): the mass-assignment defence.
    pub reject_unknown_properties: bool,
    /// Refuse query parameters the operation does not declare.
    pub reject_unknown_query_params: bool,
}

/// What response filtering did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseReport {
    /// JSON pointers (relative to the body root) of the properties removed.
    pub removed: Vec<String>,
    /// No response is declared for this status (nor its range, nor `default`).
    pub undeclared_status: bool,
    /// The response's content type is not declared for this status.
    pub undeclared_content_type: bool,
}

fn method_index(method: &str) -> Option<usize> {
    METHODS.iter().position(|m| m.eq_ignore_ascii_case(method))
}

/// Substitutes server variables with their defaults.
fn expand_server_url(server: &Value) -> Option<String> {
    let mut url = server.get("url")?.as_str()?.to_owned();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (name, var) in vars {
            let default = var.get("default").and_then(Value::as_str).unwrap_or("");
            url = url.replace(&format!("{{{name}}}"), default);
        }
    }
    Some(url)
}

/// Builds one schema validator: 2020-12, formats asserted, `regex` engine, nothing remote.
fn build_validator(
    loader: &Loader,
    schema: &Value,
    loc: &Loc,
) -> Result<jsonschema::Validator, SpecError> {
    let document = loader.standalone(schema);
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(&document)
        .map_err(|e| loader.error(loc, format!("invalid schema: {e}")))
}

/// Finds the entry of `media` whose range best covers `content_type`.
fn best_media<'m, T>(
    media: &'m [T],
    range: impl Fn(&T) -> &str,
    content_type: &str,
) -> Option<&'m T> {
    let e = essence(content_type);
    media
        .iter()
        .filter(|m| range_covers(range(m), &e))
        .max_by_key(|m| range_rank(range(m)))
}

/// Intermediate state of compilation.
struct Compiler {
    loader: Loader,
    /// Schemas whose shape is needed, with where to put the node.
    pending_shapes: Vec<(Value, ShapeSlot)>,
}

#[derive(Clone, Copy)]
enum ShapeSlot {
    Body {
        op: usize,
        media: usize,
    },
    Response {
        op: usize,
        response: usize,
        media: usize,
    },
}

impl Compiler {
    fn param(&mut self, loc: &Loc) -> Result<CompiledParam, SpecError> {
        let loc = self.loader.follow(loc)?;
        let value = self.loader.get(&loc).cloned().unwrap_or(Value::Null);
        let name = value
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| self.loader.error(&loc, "parameter needs a string `name`"))?
            .to_owned();
        let location = value
            .get("in")
            .and_then(Value::as_str)
            .and_then(In::parse)
            .ok_or_else(|| {
                self.loader
                    .error(&loc, "parameter `in` must be path, query, header or cookie")
            })?;
        let style = Style::parse(value.get("style").and_then(Value::as_str), location).ok_or_else(
            || {
                self.loader
                    .error(&loc.child("style"), "unknown parameter style")
            },
        )?;
        let explode = value
            .get("explode")
            .and_then(Value::as_bool)
            .unwrap_or(style == Style::Form);
        let required =
            location == In::Path || value.get("required").and_then(Value::as_bool) == Some(true);
        let (schema_loc, json_content) = if value.get("schema").is_some() {
            (Some(loc.child("schema")), false)
        } else if let Some(content) = value.get("content").and_then(Value::as_object) {
            let first = content
                .iter()
                .next()
                .map(|(k, v)| (k.clone(), v.get("schema").is_some()));
            match first {
                Some((media, true)) => {
                    let is_json = media_kind(&essence(&media)) == MediaKind::Json;
                    (
                        Some(loc.child("content").child(&media).child("schema")),
                        is_json,
                    )
                }
                _ => (None, false),
            }
        } else {
            (None, false)
        };
        let (kind, validator) = match schema_loc {
            Some(sl) => {
                let schema = self.loader.schema(&sl)?;
                let kind = params::kind_of(&schema, &self.loader.defs, 0);
                (kind, Some(build_validator(&self.loader, &schema, &sl)?))
            }
            None => (Kind::Any, None),
        };
        let name = if location == In::Header {
            name.to_ascii_lowercase()
        } else {
            name
        };
        Ok(CompiledParam {
            name,
            location,
            required,
            style,
            explode,
            kind,
            json_content,
            validator,
        })
    }

    fn params(&mut self, list_loc: &Loc, out: &mut Vec<CompiledParam>) -> Result<(), SpecError> {
        let Some(list) = self.loader.get(list_loc) else {
            return Ok(());
        };
        let Some(len) = list.as_array().map(Vec::len) else {
            return Err(self.loader.error(list_loc, "`parameters` must be an array"));
        };
        for i in 0..len {
            let p = self.param(&list_loc.child(&i.to_string()))?;
            if p.location == In::Header && IGNORED_HEADERS.contains(&p.name.as_str()) {
                continue;
            }
            // Operation-level parameters override path-level ones of the same name and location.
            out.retain(|q| !(q.name == p.name && q.location == p.location));
            out.push(p);
        }
        Ok(())
    }

    fn body(&mut self, loc: &Loc, op: usize) -> Result<Option<CompiledBody>, SpecError> {
        if self.loader.get(loc).is_none() {
            return Ok(None);
        }
        let loc = self.loader.follow(loc)?;
        let value = self.loader.get(&loc).cloned().unwrap_or(Value::Null);
        let required = value.get("required").and_then(Value::as_bool) == Some(true);
        let content = value
            .get("content")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                self.loader
                    .error(&loc, "requestBody needs a `content` object")
            })?;
        let mut media = Vec::new();
        for (range, m) in content {
            let mloc = loc.child("content").child(range);
            let range = essence(range);
            let kind = media_kind(&range);
            let (coercion, validator) = if m.get("schema").is_some() {
                let sl = mloc.child("schema");
                let schema = self.loader.schema(&sl)?;
                let coercion = params::kind_of(&schema, &self.loader.defs, 0);
                let validator = build_validator(&self.loader, &schema, &sl)?;
                if kind != MediaKind::Other {
                    self.pending_shapes.push((
                        schema,
                        ShapeSlot::Body {
                            op,
                            media: media.len(),
                        },
                    ));
                }
                (coercion, Some(validator))
            } else {
                (Kind::Any, None)
            };
            media.push(CompiledMedia {
                range,
                kind,
                coercion,
                validator,
                shape: None,
            });
        }
        Ok(Some(CompiledBody { required, media }))
    }

    fn responses(&mut self, loc: &Loc, op: usize) -> Result<Vec<CompiledResponse>, SpecError> {
        let Some(map) = self.loader.get(loc).and_then(Value::as_object).cloned() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (code, _) in &map {
            let rloc = loc.child(code);
            let status = if code == "default" {
                StatusKey::Default
            } else if let Ok(n) = code.parse::<u16>() {
                StatusKey::Exact(n)
            } else if code.len() == 3
                && code[1..].eq_ignore_ascii_case("xx")
                && code.as_bytes()[0].is_ascii_digit()
            {
                StatusKey::Range(u16::from(code.as_bytes()[0] - b'0'))
            } else {
                return Err(self.loader.error(
                    &rloc,
                    "response key must be a status code, a range like 4XX, or default",
                ));
            };
            let rloc = self.loader.follow(&rloc)?;
            let value = self.loader.get(&rloc).cloned().unwrap_or(Value::Null);
            let mut media = Vec::new();
            if let Some(content) = value.get("content").and_then(Value::as_object) {
                for (range, m) in content {
                    if m.get("schema").is_some() && media_kind(&essence(range)) == MediaKind::Json {
                        let schema = self
                            .loader
                            .schema(&rloc.child("content").child(range).child("schema"))?;
                        self.pending_shapes.push((
                            schema,
                            ShapeSlot::Response {
                                op,
                                response: out.len(),
                                media: media.len(),
                            },
                        ));
                    }
                    media.push((essence(range), None));
                }
            }
            out.push(CompiledResponse { status, media });
        }
        Ok(out)
    }
}

impl ApiSpec {
    /// Loads and compiles the spec at `path` (`.json`, `.yaml` or `.yml`).
    pub fn load(path: &Path) -> Result<ApiSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: path.to_path_buf(),
            line: None,
            pointer: String::new(),
            message: format!("cannot read the spec: {e}"),
        })?;
        ApiSpec::from_str(&text, path)
    }

    /// Compiles a spec given as text; `origin` names it in errors and is where relative `$ref`
    /// files are looked for.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &Path) -> Result<ApiSpec, SpecError> {
        let loader = Loader::new(text, origin)?;
        let root = Loc {
            doc: 0,
            pointer: String::new(),
        };
        let prefixes: Vec<String> = loader
            .get(&root.child("servers"))
            .and_then(Value::as_array)
            .map(|servers| {
                servers
                    .iter()
                    .filter_map(expand_server_url)
                    .map(|u| router::server_prefix(&u))
                    .collect()
            })
            .unwrap_or_default();
        let mut router = Router::new(prefixes);
        let mut compiler = Compiler {
            loader,
            pending_shapes: Vec::new(),
        };
        let paths_loc = root.child("paths");
        let path_keys: Vec<String> = match compiler.loader.get(&paths_loc) {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            Some(_) => {
                return Err(compiler
                    .loader
                    .error(&paths_loc, "`paths` must be an object"));
            }
            None if compiler.loader.version == Version::V31 => Vec::new(),
            None => return Err(compiler.loader.error(&root, "missing `paths`")),
        };
        let mut paths = Vec::new();
        let mut operations: Vec<CompiledOperation> = Vec::new();
        for template in path_keys {
            let item_loc = paths_loc.child(&template);
            let param_names = router
                .insert(&template, paths.len())
                .map_err(|m| compiler.loader.error(&item_loc, m))?;
            let item_loc = compiler.loader.follow(&item_loc)?;
            if !compiler.loader.get(&item_loc).is_some_and(Value::is_object) {
                return Err(compiler
                    .loader
                    .error(&item_loc, "a path item must be an object"));
            }
            let mut methods = [None; 8];
            for (mi, method) in METHODS.iter().enumerate() {
                let op_loc = item_loc.child(method);
                let Some(op_value) = compiler.loader.get(&op_loc) else {
                    continue;
                };
                if !op_value.is_object() {
                    return Err(compiler
                        .loader
                        .error(&op_loc, "an operation must be an object"));
                }
                let operation_id = op_value
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let index = operations.len();
                let mut params = Vec::new();
                compiler.params(&item_loc.child("parameters"), &mut params)?;
                compiler.params(&op_loc.child("parameters"), &mut params)?;
                let body = compiler.body(&op_loc.child("requestBody"), index)?;
                let responses = compiler.responses(&op_loc.child("responses"), index)?;
                operations.push(CompiledOperation {
                    operation_id,
                    params,
                    body,
                    responses,
                });
                methods[mi] = Some(index);
            }
            paths.push(CompiledPath {
                template,
                param_names,
                methods,
            });
        }
        let Compiler {
            loader,
            pending_shapes,
        } = compiler;
        loader.check_cycles()?;
        let mut builder = ShapeBuilder::new(&loader.defs);
        for (schema, slot) in &pending_shapes {
            let node = builder.add(schema);
            match *slot {
                ShapeSlot::Body { op, media } => {
                    if let Some(m) = operations[op]
                        .body
                        .as_mut()
                        .and_then(|b| b.media.get_mut(media))
                    {
                        m.shape = Some(node);
                    }
                }
                ShapeSlot::Response {
                    op,
                    response,
                    media,
                } => {
                    if let Some(m) = operations[op]
                        .responses
                        .get_mut(response)
                        .and_then(|r| r.media.get_mut(media))
                    {
                        m.1 = Some(node);
                    }
                }
            }
        }
        let shapes = builder.finish();
        tracing::debug!(
            paths = paths.len(),
            operations = operations.len(),
            "OpenAPI spec compiled"
        );
        Ok(ApiSpec {
            router,
            paths,
            operations,
            shapes,
        })
    }

    /// Number of operations compiled.
    pub fn operation_count(&self) -> usize {
        self.operations.len()
    }

    /// Every `(METHOD, path template, operationId)` of the spec.
    pub fn operations(&self) -> Vec<(String, &str, Option<&str>)> {
        let mut out = Vec::new();
        for p in &self.paths {
            for (mi, op) in p.methods.iter().enumerate() {
                if let Some(op) = op {
                    out.push((
                        METHODS[mi].to_ascii_uppercase(),
                        p.template.as_str(),
                        self.operations[*op].operation_id.as_deref(),
                    ));
                }
            }
        }
        out
    }

    /// Finds the operation for `method` and the raw (still percent-encoded) `raw_path`.
    pub fn match_request(&self, method: &str, raw_path: &str) -> RouteMatch<'_> {
        let mi = method_index(method);
        let operation_of = |path: usize| -> Option<usize> {
            let methods = &self.paths.get(path)?.methods;
            let mi = mi?;
            methods[mi].or(if mi == HEAD { methods[GET] } else { None })
        };
        let accept = |path: usize| operation_of(path).is_some();
        let mut path_params: Vec<(&str, String)> = Vec::new();
        match self.router.find(raw_path, &accept, &mut path_params) {
            Found::Accepted(p) => {
                let path = &self.paths[p];
                let Some(operation) = operation_of(p) else {
                    return RouteMatch::NotFound;
                };
                for (slot, name) in path_params.iter_mut().zip(&path.param_names) {
                    slot.0 = name.as_str();
                }
                RouteMatch::Operation(OperationMatch {
                    operation_id: self.operations[operation].operation_id.as_deref(),
                    path_template: &path.template,
                    path_params,
                    operation,
                })
            }
            Found::Rejected(p) => {
                let allowed = self.paths[p]
                    .methods
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.is_some())
                    .map(|(i, _)| METHODS[i].to_ascii_uppercase())
                    .collect();
                RouteMatch::MethodNotAllowed { allowed }
            }
            Found::None => RouteMatch::NotFound,
        }
    }

    /// Validates a request against its matched operation; an empty list means it is valid.
    pub fn validate_request(
        &self,
        op: &OperationMatch<'_>,
        req: &RequestInput<'_>,
        opts: &ValidationOptions,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let Some(operation) = self.operations.get(op.operation) else {
            return out;
        };
        params::check_path(&operation.params, &op.path_params, &mut out);
        params::check_query(
            &operation.params,
            req.query,
            opts.reject_unknown_query_params,
            &mut out,
        );
        params::check_headers(&operation.params, req.headers, &mut out);
        params::check_cookies(&operation.params, req.headers, &mut out);
        self.check_body(operation, req, opts, &mut out);
        out
    }

    fn check_body(
        &self,
        operation: &CompiledOperation,
        req: &RequestInput<'_>,
        opts: &ValidationOptions,
        out: &mut Vec<Violation>,
    ) {
        let has_body = req.body.is_some_and(|b| !b.is_empty()) || req.json.is_some();
        let Some(body) = &operation.body else {
            if has_body {
                out.push(Violation::new(
                    "/body",
                    "content_type",
                    "the operation declares no request body",
                ));
            }
            return;
        };
        if !has_body {
            if body.required {
                out.push(Violation::new(
                    "/body",
                    "required",
                    "request body is required",
                ));
            }
            return;
        }
        let content_type = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(media) = (!content_type.is_empty())
            .then(|| best_media(&body.media, |m| m.range.as_str(), content_type))
            .flatten()
        else {
            out.push(Violation::new(
                "/body",
                "content_type",
                "request content type is not declared by the operation",
            ));
            return;
        };
        let bytes = req.body.unwrap_or_default();
        let parsed;
        let value: &Value = match media.kind {
            MediaKind::Json => match req.json {
                Some(v) => v,
                None => match serde_json::from_slice::<Value>(bytes) {
                    Ok(v) => {
                        parsed = v;
                        &parsed
                    }
                    Err(_) => {
                        out.push(Violation::new(
                            "/body",
                            "json",
                            "request body is not valid JSON",
                        ));
                        return;
                    }
                },
            },
            MediaKind::Form => {
                parsed = body::form_to_value(bytes, &media.coercion);
                &parsed
            }
            MediaKind::Multipart => {
                match body::multipart_to_value(bytes, content_type, &media.coercion) {
                    Ok(v) => {
                        parsed = v;
                        &parsed
                    }
                    Err(_) => {
                        out.push(Violation::new(
                            "/body",
                            "multipart",
                            "request body is not a well-formed multipart form",
                        ));
                        return;
                    }
                }
            }
            MediaKind::Other => return,
        };
        let first = out.len();
        // `is_valid` is much cheaper than collecting errors: collect only when there are some.
        if let Some(v) = &media.validator
            && !v.is_valid(value)
        {
            violation::from_schema_errors("/body", v.iter_errors(value), out);
        }
        if opts.reject_unknown_properties
            && let Some(shape) = media.shape
        {
            let known: HashSet<(String, String)> = out[first..]
                .iter()
                .map(|v| (v.pointer.clone(), v.rule.clone()))
                .collect();
            for u in self.shapes.undeclared(shape, value, "/body") {
                if known.contains(&(u.pointer.clone(), "additionalProperties".to_owned())) {
                    continue;
                }
                let message = if u.read_only {
                    "property is read-only and may not be sent"
                } else {
                    "property not declared by the schema"
                };
                out.push(Violation::new(u.pointer, "additionalProperties", message));
            }
        }
    }

    fn response_for(&self, op: &OperationMatch<'_>, status: u16) -> Option<&CompiledResponse> {
        let responses = &self.operations.get(op.operation)?.responses;
        responses
            .iter()
            .find(|r| r.status == StatusKey::Exact(status))
            .or_else(|| {
                responses
                    .iter()
                    .find(|r| r.status == StatusKey::Range(status / 100))
            })
            .or_else(|| responses.iter().find(|r| r.status == StatusKey::Default))
    }

    /// Whether the response for `status` and `content_type` has a declared JSON schema, i.e.
    /// whether the gateway should buffer the body and call [`ApiSpec::filter_response`].
    pub fn response_is_json_declared(
        &self,
        op: &OperationMatch<'_>,
        status: u16,
        content_type: Option<&str>,
    ) -> bool {
        let Some(response) = self.response_for(op, status) else {
            return false;
        };
        let Some(ct) = content_type else { return false };
        best_media(&response.media, |m| m.0.as_str(), ct).is_some_and(|m| m.1.is_some())
    }

    /// Whether `status` is declared for the operation (exactly, by range, or by `default`).
    pub fn response_status_declared(&self, op: &OperationMatch<'_>, status: u16) -> bool {
        self.response_for(op, status).is_some()
    }

    /// Removes from `body`, in place, every property the declared response schema does not
    /// declare (recursively, through arrays, `$ref`, `allOf`, `oneOf`/`anyOf` as a union), and
    /// reports what it did. writeOnly properties are removed too.
    pub fn filter_response(
        &self,
        op: &OperationMatch<'_>,
        status: u16,
        content_type: Option<&str>,
        body: &mut Value,
    ) -> ResponseReport {
        let mut report = ResponseReport::default();
        let Some(response) = self.response_for(op, status) else {
            report.undeclared_status = true;
            return report;
        };
        let Some(media) =
            content_type.and_then(|ct| best_media(&response.media, |m| m.0.as_str(), ct))
        else {
            report.undeclared_content_type = true;
            return report;
        };
        if let Some(node) = media.1 {
            self.shapes.filter(node, body, "", &mut report.removed);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_spec_can_be_shared_across_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<ApiSpec>();
    }
}
