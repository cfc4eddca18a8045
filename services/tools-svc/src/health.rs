//! `GET /health`: version and whether the lead store answers.

use crate::ToolsState;
use actix_web::{web, HttpResponse};
use callway_core::web::{DependencyHealth, HealthReport};

pub async fn health(state: web::Data<ToolsState>) -> HttpResponse {
    HttpResponse::Ok().json(report(&state).await)
}

pub async fn report(state: &ToolsState) -> HealthReport {
    let ok = state.leads.ping().await.is_ok();
    HealthReport::new(
        "tools-svc",
        vec![DependencyHealth {
            name: "lead_store",
            kind: state.leads.kind().into(),
            ok,
        }],
    )
}
