//! A config snapshot compiled for the request path: the route table and the upstream pools.
//!
//! Built off the request path (at start and on reload) and swapped in atomically; requests
//! hold an `Arc` to the snapshot they started with, so a reload never changes a request
//! half-way.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;

use crate::authn::{IdentityRuntime, RouteAuthz};
use crate::config::{Config, RouteConfig};
use crate::upstream::UpstreamPool;

#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    pub config: RouteConfig,
    pub pool: Arc<UpstreamPool>,
    pub authz: RouteAuthz,
    pub in_flight: crate::protect::InFlight,
}

#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    /// Sorted so the first match is the best: longest prefix, then host-specific, then
    /// method-specific.
    routes: Vec<Arc<Route>>,
    pub pools: HashMap<String, Arc<UpstreamPool>>,
    pub identity: IdentityRuntime,
    pub protection: crate::protect::Protection,
    pub generation: u64,
}

impl Snapshot {
    /// Compile `config`, reusing pools from `previous` whose settings did not change so a
    /// reload keeps warm connections and health state.
    pub fn build(
        config: Config,
        previous: Option<&Snapshot>,
        generation: u64,
    ) -> Result<Self, String> {
        let mut pools = HashMap::new();
        for (name, up) in &config.upstreams {
            let reused = previous
                .and_then(|p| p.pools.get(name))
                .filter(|p| p.config == *up)
                .cloned();
            let pool = match reused {
                Some(p) => p,
                None => {
                    UpstreamPool::new(name, up).map_err(|e| format!("upstreams.{name}: {e}"))?
                }
            };
            pools.insert(name.clone(), pool);
        }
        let identity = IdentityRuntime::build(&config.identity, previous.map(|p| &p.identity))?;
        let protection = crate::protect::Protection::build(
            &config.rate_limit,
            &config.access,
            previous.map(|p| &p.protection),
        )?;
        let mut routes: Vec<Arc<Route>> = Vec::new();
        for r in &config.routes {
            let Some(pool) = pools.get(&r.upstream) else {
                continue;
            };
            routes.push(Arc::new(Route {
                name: r.name.as_str().into(),
                config: r.clone(),
                pool: pool.clone(),
                authz: RouteAuthz::compile(r)?,
                in_flight: crate::protect::InFlight::default(),
            }));
        }
        routes.sort_by_key(|r| {
            std::cmp::Reverse((
                r.config.path_prefix.trim_end_matches('/').len(),
                !r.config.hosts.is_empty(),
                !r.config.methods.is_empty(),
            ))
        });
        Ok(Snapshot {
            config: Arc::new(config),
            routes,
            pools,
            identity,
            protection,
            generation,
        })
    }

    /// The route for `host` (lowercase, no port), `path` and `method`, if any.
    pub fn find_route(&self, host: &str, path: &str, method: &Method) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| {
            let c = &r.config;
            (c.hosts.is_empty() || c.hosts.iter().any(|h| h == host))
                && prefix_matches(&c.path_prefix, path)
                && (c.methods.is_empty() || c.methods.contains(method))
        })
    }
}

/// Prefix match on segment boundaries: `/api` matches `/api`, `/api/` and `/api/x`, not `/apix`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_matches;

    #[test]
    fn prefixes_respect_segments() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api/", "/api/x"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(!prefix_matches("/api/v2", "/api/v1/x"));
    }
}
