//! The web-session token every tool call must carry (`Authorization: Bearer <token>`).

use crate::error::ToolsError;
use actix_web::HttpRequest;
use callway_core::session_token::{SessionTokenError, SessionTokens, WebSessionId};

pub fn web_session(req: &HttpRequest, tokens: &SessionTokens) -> Result<WebSessionId, ToolsError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ToolsError::Session(SessionTokenError::Missing))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or(ToolsError::Session(SessionTokenError::Malformed))?;
    tokens
        .verify(token, chrono::Utc::now().timestamp())
        .map_err(ToolsError::Session)
}
