//! CEL rules: compiled once into [`Program`]s, evaluated per request against two variables,
//! `request` and `identity`.
//!
//! Evaluation is kept cheap: the standard environment is built once per process, the variables
//! are built only when a route has CEL rules and only those the expressions mention, and their
//! strings borrow from the request and identity instead of being copied. Anything but a boolean
//! `true` — `false`, another type, a runtime error such as a missing map key — denies: a policy
//! that cannot be evaluated must not let a request through.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, Program, Value};
use portcullis_identity::{AuthMethod, Identity};

use crate::{AuthzRequest, PolicyError};

/// Built once: `Env::stdlib()` registers every standard overload, far too much work per request.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Names an expression may use besides its own comprehension variables: the two inputs, and the
/// identifiers CEL itself resolves (type names for `type(x) == string`, the `optional` namespace).
const KNOWN_NAMES: &[&str] = &[
    "request",
    "identity",
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "optional",
    "optional_type",
    "string",
    "type",
    "uint",
];

struct CelRule {
    /// `cel[i]`, precomputed for decisions.
    name: String,
    program: Program,
}

/// The compiled `cel` list of one route.
pub(crate) struct CelRules {
    rules: Vec<CelRule>,
    needs_request: bool,
    needs_identity: bool,
}

impl std::fmt::Debug for CelRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelRules")
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl CelRules {
    pub(crate) fn compile(sources: &[String]) -> Result<CelRules, PolicyError> {
        let mut rules = Vec::with_capacity(sources.len());
        let mut needs_request = false;
        let mut needs_identity = false;
        for (index, source) in sources.iter().enumerate() {
            let program = compile_one(index, source)?;
            let refs = program.references();
            needs_request |= refs.has_variable("request");
            needs_identity |= refs.has_variable("identity");
            rules.push(CelRule {
                name: format!("cel[{index}]"),
                program,
            });
        }
        Ok(CelRules {
            rules,
            needs_request,
            needs_identity,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that does not evaluate to `true`, with the reason: `forbidden` for `false`,
    /// `cel_error` for anything else.
    pub(crate) fn first_failure(
        &self,
        request: &AuthzRequest<'_>,
        identity: &Identity,
    ) -> Option<(&str, &'static str)> {
        if self.rules.is_empty() {
            return None;
        }
        let vars = Vars {
            request: self.needs_request.then(|| request_val(request)),
            identity: self.needs_identity.then(|| identity_val(identity)),
        };
        let mut context = Context::with_env(Arc::clone(&ENV));
        context.set_variable_resolver(&vars);
        for rule in &self.rules {
            // The interpreter is third-party code run on request data: should it ever panic,
            // deny this request rather than take the worker down with it.
            let outcome = catch_unwind(AssertUnwindSafe(|| rule.program.execute(&context)));
            match outcome {
                Ok(Ok(Value::Bool(true))) => {}
                Ok(Ok(Value::Bool(false))) => return Some((&rule.name, "forbidden")),
                Ok(Ok(other)) => {
                    // debug, not warn: evaluation errors can be provoked by clients (a missing
                    // header is a missing map key), so they must not be able to flood the log.
                    tracing::debug!(rule = %rule.name, result = ?other, "CEL rule returned a non-boolean; denying");
                    return Some((&rule.name, "cel_error"));
                }
                Ok(Err(error)) => {
                    tracing::debug!(rule = %rule.name, %error, "CEL rule failed to evaluate; denying");
                    return Some((&rule.name, "cel_error"));
                }
                Err(_) => {
                    tracing::warn!(rule = %rule.name, "CEL interpreter panicked; denying");
                    return Some((&rule.name, "cel_error"));
                }
            }
        }
        None
    }
}

fn compile_one(index: usize, source: &str) -> Result<Program, PolicyError> {
    let err = |message: String| PolicyError::Cel { index, message };
    if source.trim().is_empty() {
        return Err(err("expression is empty".to_owned()));
    }
    // A parser panic on odd input must fail the (re)load with a message, not kill the process.
    let program = match catch_unwind(AssertUnwindSafe(|| ENV.compile(source))) {
        Ok(Ok(program)) => program,
        Ok(Err(parse_errors)) => return Err(err(parse_errors.to_string())),
        Err(_) => return Err(err("the CEL parser failed on this expression".to_owned())),
    };
    // An unknown variable (`reqeust.method`) would otherwise be a runtime error on every
    // request: a route that silently denies everything. Catch the typo at load time.
    let mut bound = Vec::new();
    if let Some(name) = unknown_variable(program.expression(), &mut bound) {
        return Err(err(format!(
            "undeclared variable '{name}' (variables are 'request' and 'identity')"
        )));
    }
    Ok(program)
}

/// The first identifier that is neither a known name nor bound by an enclosing comprehension.
fn unknown_variable<'e>(expr: &'e IdedExpr, bound: &mut Vec<&'e str>) -> Option<&'e str> {
    match &expr.expr {
        Expr::Ident(name) => {
            let known = name.starts_with('@')
                || KNOWN_NAMES.contains(&name.as_str())
                || bound.contains(&name.as_str());
            (!known).then_some(name.as_str())
        }
        Expr::Unspecified | Expr::Literal(_) => None,
        Expr::Call(call) => call
            .target
            .iter()
            .map(|t| &**t)
            .chain(&call.args)
            .find_map(|e| unknown_variable(e, bound)),
        Expr::List(list) => list
            .elements
            .iter()
            .find_map(|e| unknown_variable(e, bound)),
        Expr::Map(map) => map.entries.iter().find_map(|entry| match &entry.expr {
            EntryExpr::StructField(field) => unknown_variable(&field.value, bound),
            EntryExpr::MapEntry(e) => {
                unknown_variable(&e.key, bound).or_else(|| unknown_variable(&e.value, bound))
            }
        }),
        Expr::Struct(s) => s.entries.iter().find_map(|entry| match &entry.expr {
            EntryExpr::StructField(field) => unknown_variable(&field.value, bound),
            EntryExpr::MapEntry(e) => {
                unknown_variable(&e.key, bound).or_else(|| unknown_variable(&e.value, bound))
            }
        }),
        Expr::Select(select) => unknown_variable(&select.operand, bound),
        Expr::Comprehension(c) => {
            // The range and the accumulator's start are evaluated outside the loop's scope.
            if let Some(name) = unknown_variable(&c.iter_range, bound)
                .or_else(|| unknown_variable(&c.accu_init, bound))
            {
                return Some(name);
            }
            let depth = bound.len();
            bound.push(&c.accu_var);
            let in_result = unknown_variable(&c.result, bound);
            bound.push(&c.iter_var);
            if let Some(v2) = &c.iter_var2 {
                bound.push(v2);
            }
            let found = in_result
                .or_else(|| unknown_variable(&c.loop_cond, bound))
                .or_else(|| unknown_variable(&c.loop_step, bound));
            bound.truncate(depth);
            found
        }
    }
}

/// The per-request variables, looked up by the interpreter without a map or any allocation.
struct Vars<'a> {
    request: Option<Box<dyn Val + 'a>>,
    identity: Option<Box<dyn Val + 'a>>,
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let value = match variable {
            "request" => self.request.as_deref()?,
            "identity" => self.identity.as_deref()?,
            _ => return None,
        };
        Some(CowVal::Borrowed(value))
    }
}

type Entries<'a> = HashMap<CelMapKey<'a>, Box<dyn Val + 'a>>;

fn string<'a>(s: &'a str) -> Box<dyn Val + 'a> {
    Box::new(CelString::from(s))
}

fn string_map<'a>(map: &'a BTreeMap<String, String>) -> Box<dyn Val + 'a> {
    let entries: Entries<'a> = map
        .iter()
        .map(|(k, v)| (CelMapKey::from(k.as_str()), string(v)))
        .collect();
    Box::new(CelMap::from(entries))
}

fn string_list<'a>(items: &'a [String]) -> Box<dyn Val + 'a> {
    Box::new(CelList::from(
        items.iter().map(|s| string(s)).collect::<Vec<_>>(),
    ))
}

fn request_val<'a>(request: &AuthzRequest<'a>) -> Box<dyn Val + 'a> {
    let query: Entries<'a> = request
        .query
        .iter()
        .map(|(k, values)| (CelMapKey::from(k.as_str()), string_list(values)))
        .collect();
    let mut map: Entries<'a> = HashMap::with_capacity(6);
    map.insert("method".into(), string(request.method));
    map.insert("path".into(), string(request.path));
    map.insert("path_params".into(), string_map(request.path_params));
    map.insert("query".into(), Box::new(CelMap::from(query)));
    map.insert("headers".into(), string_map(request.headers));
    // Canonical form, so an IPv4 client reached over a dual-stack socket (`::ffff:10.0.0.1`) is
    // written `10.0.0.1` and a rule about it cannot be sidestepped by the socket family.
    let ip = request.client_ip.to_canonical().to_string();
    map.insert("client_ip".into(), Box::new(CelString::from(ip)));
    Box::new(CelMap::from(map))
}

fn identity_val(identity: &Identity) -> Box<dyn Val + '_> {
    let claims: Entries<'_> = identity
        .claims
        .iter()
        .map(|(k, v)| (CelMapKey::from(k.as_str()), json_val(v)))
        .collect();
    let mut map: Entries<'_> = HashMap::with_capacity(5);
    map.insert("principal".into(), string(&identity.principal));
    map.insert("method".into(), string(method_name(identity.method)));
    map.insert("scopes".into(), string_list(&identity.scopes));
    map.insert("claims".into(), Box::new(CelMap::from(claims)));
    map.insert(
        "credential_id".into(),
        match &identity.credential_id {
            Some(id) => string(id),
            None => Box::new(CelNull),
        },
    );
    Box::new(CelMap::from(map))
}

/// The same names `AuthMethod` serializes to. An exhaustive match rather than going through
/// serde so a new method is a compile error here, not a silently different string.
fn method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::ApiKey => "api_key",
        AuthMethod::Basic => "basic",
        AuthMethod::Jwt => "jwt",
        AuthMethod::Introspection => "introspection",
        AuthMethod::Mtls => "mtls",
    }
}

/// A claim as a CEL value. Integers become `int` (or `uint` past `i64`) so that
/// `identity.claims.level >= 2` works with plain integer literals. Depth is bounded by the JSON
/// parser that produced the claims.
fn json_val(value: &serde_json::Value) -> Box<dyn Val + '_> {
    use serde_json::Value as J;
    match value {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            (None, None) => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        J::String(s) => string(s),
        J::Array(items) => Box::new(CelList::from(
            items.iter().map(json_val).collect::<Vec<_>>(),
        )),
        J::Object(fields) => {
            let entries: Entries<'_> = fields
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), json_val(v)))
                .collect();
            Box::new(CelMap::from(entries))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_rules_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CelRules>();
    }

    #[test]
    fn unknown_variables_refused() {
        let e = compile_one(0, "reqeust.method == 'GET'").unwrap_err();
        assert!(e.to_string().contains("'reqeust'"), "{e}");
        let e = compile_one(3, "[1].all(x, y > 0)").unwrap_err();
        assert!(matches!(e, PolicyError::Cel { index: 3, .. }), "{e}");
        // The loop variable is not visible outside its comprehension.
        assert!(compile_one(0, "[1].all(x, x > 0) && x == 1").is_err());
        assert!(compile_one(0, "").is_err());
    }

    #[test]
    fn known_names_accepted() {
        for ok in [
            "request.method == 'GET'",
            "identity.scopes.exists(s, s == 'a')",
            "request.headers.all(k, k.startsWith('x-') || size(request.headers[k]) >= 0)",
            "type(identity.principal) == string",
            "identity.claims.map(k, k).size() >= 0 || true",
            "[1, 2].exists_one(x, [3].all(y, x < y))",
            "{'a': request.path}.a != ''",
            "request.path.matches('^/users/[a-z]+$')",
        ] {
            compile_one(0, ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }
}
