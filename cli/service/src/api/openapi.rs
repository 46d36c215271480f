//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types
//! (served at `GET /v1/openapi.json`).

use axum::Json;
use meshtrust_issuer::server::api::{
    ClusterEntry, ClusterList, ClusterReport, ClusterState, DesiredCacerts, EnrollRequest,
    ErrorResponse, IssuedResponse, IstiodSettings, PolicyInfo, RenewRequest, ReportRequest,
    ReportResponse, Reported, RootInfo, RotationPhase, RotationStatus, TokenRequest, TokenResponse,
    TrustBundleResponse, Waiting,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "meshtrust serve",
        description = "Signs per-cluster intermediate CAs for a multicluster Istio mesh under one shared root.",
    ),
    paths(
        super::trust::trust_bundle,
        super::enroll::enroll,
        super::renew::renew,
        super::report::report,
        super::admin::clusters,
        super::admin::revoke,
        super::admin::create_token,
        super::admin::rotation,
    ),
    components(schemas(
        TrustBundleResponse, RootInfo, RotationPhase, PolicyInfo, EnrollRequest, RenewRequest,
        IssuedResponse, ErrorResponse, ClusterList, ClusterEntry, ClusterState, TokenRequest,
        TokenResponse, ReportRequest, ClusterReport, IstiodSettings, ReportResponse, Reported,
        RotationStatus, Waiting, DesiredCacerts,
    )),
    modifiers(&Credentials),
    tags(
        (name = "trust", description = "What every cluster must trust"),
        (name = "clusters", description = "Enrollment and renewal of a cluster's intermediate"),
        (name = "admin", description = "Inventory, revocation and enrollment tokens"),
    )
)]
pub struct ApiDoc;

struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "enrollment_token",
            bearer(
                "mtenroll",
                "A one-time enrollment token bound to the cluster",
            ),
        );
        components.add_security_scheme(
            "service_account_token",
            bearer(
                "JWT",
                "A projected Kubernetes ServiceAccount token, audience `meshtrust`",
            ),
        );
        components
            .add_security_scheme("admin_token", bearer("opaque", "The service's admin token"));
    }
}

/// `GET /v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
