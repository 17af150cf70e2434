//! Bearer tokens: a write token allows everything, a read token allows the
//! reads (GET and HEAD). Without tokens the API is open, which `ferry
//! serve` allows on a loopback address only.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::{codes, ApiError};
use super::AppState;

/// Who may do what.
#[derive(Clone, Default)]
pub struct Tokens {
    /// Allows every route.
    pub write: Option<String>,
    /// Allows the reads.
    pub read: Option<String>,
    /// Refuses every change, whatever the token.
    pub read_only: bool,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("write", &self.write.as_ref().map(|_| "***"))
            .field("read", &self.read.as_ref().map(|_| "***"))
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Tokens {
    /// True when requests must carry a token.
    pub fn required(&self) -> bool {
        self.write.is_some() || self.read.is_some()
    }

    /// Whether a request with `method` and `bearer` may pass.
    ///
    /// # Errors
    /// 401 without a token (where one is needed), 403 with a wrong one or a
    /// read token on a change, or any change on a read-only server.
    pub fn check(&self, method: &Method, bearer: Option<&str>) -> Result<(), ApiError> {
        let reading = method == Method::GET || method == Method::HEAD;
        if !reading && self.read_only {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                "this server is read-only (ferry serve --read-only)",
            ));
        }
        if !self.required() {
            return Ok(());
        }
        let Some(given) = bearer else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "this server needs a token: send Authorization: Bearer <token>",
            ));
        };
        let is = |t: &Option<String>| t.as_deref().is_some_and(|t| same(t, given));
        if is(&self.write) || (reading && is(&self.read)) {
            return Ok(());
        }
        let message = if is(&self.read) {
            "this token is read-only: changes need the write token"
        } else {
            "this token is not one this server knows"
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            message,
        ))
    }
}

/// Compares in time that depends on the lengths only.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of a request, if it has one.
fn bearer(req: &Request) -> Option<&str> {
    bearer_of(req.headers())
}

/// The bearer token in `headers`, if they have one.
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The middleware of the API routes.
/// `/healthz` needs no token (load balancers probe it), nor do the
/// dashboard's files (they hold no data).
pub async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" || super::dashboard::is_asset_path(req.uri().path()) {
        return next.run(req).await;
    }
    match state.tokens.check(req.method(), bearer(&req)) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_allow_what_they_should() {
        let open = Tokens::default();
        assert!(open.check(&Method::POST, None).is_ok());
        let t = Tokens {
            write: Some("w".into()),
            read: Some("r".into()),
            read_only: false,
        };
        let status = |m: Method, b: Option<&str>| t.check(&m, b).err().map(|e| e.status);
        assert_eq!(status(Method::GET, None), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(status(Method::GET, Some("r")), None);
        assert_eq!(status(Method::GET, Some("w")), None);
        assert_eq!(status(Method::POST, Some("w")), None);
        assert_eq!(status(Method::POST, Some("r")), Some(StatusCode::FORBIDDEN));
        assert_eq!(status(Method::GET, Some("x")), Some(StatusCode::FORBIDDEN));
        assert_eq!(
            status(Method::DELETE, Some("ww")),
            Some(StatusCode::FORBIDDEN)
        );
        let ro = Tokens {
            read_only: true,
            ..Tokens::default()
        };
        assert!(ro.check(&Method::GET, None).is_ok());
        assert_eq!(
            ro.check(&Method::POST, None).err().map(|e| e.status),
            Some(StatusCode::FORBIDDEN)
        );
    }
}
