//! The OpenAPI 3.1 document of the API (`GET /api/v1/openapi.json`), generated from the
//! handlers' `#[utoipa::path]` annotations and the types of their answers (`schema`);
//! `tests/api.rs` checks real answers against it.

use std::sync::LazyLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use super::schema::{self, ErrorBody, OpenApiDocument, Tally};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ecpat-indicators",
        description = "The ECPAT network's 2018-2021 strategic indicators, live.\n\nJSON API over the \
            indicator tallies kept by the ecpat-indicators workers (docs/api.md), read-only but for \
            `POST /api/v1/events`, which publishes events for the workers when `ECPAT_WRITE_TOKEN` is set. \
            Every error is `{\"error\": \"...\"}` (an event refused by `POST /api/v1/events` adds its reason \
            and detail): 400 for a bad `period` or `limit`, 404 for an unknown indicator code or path, 503 when \
            the database does not answer. Periods are `all` or a year from 1990 to 2100. See docs/api.md.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "http://127.0.0.1:8080", description = "The default `http.addr`.")),
    tags(
        (name = "indicators", description = "Indicator values, their evidence and the live stream."),
        (name = "operations", description = "Health, readiness, metrics, rejections, this document."),
        (name = "events", description = "Publishing events over HTTP (only with `ECPAT_WRITE_TOKEN` set)."),
    ),
    paths(
        super::healthz,
        super::readyz,
        super::metrics,
        super::list_frameworks,
        super::list,
        super::one,
        super::series,
        super::evidence::records,
        super::evidence::export,
        super::report::workbook,
        super::report::page,
        super::rejections,
        super::stream::stream,
        super::write::publish,
        document,
    ),
    components(responses(BadRequest, NotFound, Unavailable)),
    modifiers(&Completed),
)]
struct ApiDoc;

/// What the annotations cannot say: the JSON Schema dialect, the schemas that no answer
/// names, and the events of the stream.
struct Completed;

impl Modify for Completed {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.json_schema_dialect = Some("https://spec.openapis.org/oas/3.1/dialect/base".into());
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(ErrorBody::name().into(), ErrorBody::schema());
        components.schemas.extend(schema::extra_schemas());
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("`ECPAT_WRITE_TOKEN`"));
        components.add_security_scheme("write_token", SecurityScheme::Http(bearer.build()));
        let tally = json!({ "tally": { "$ref": format!("#/components/schemas/{}", Tally::name()) } });
        let stream = openapi.paths.paths.get_mut("/api/v1/stream").and_then(|item| item.get.as_mut());
        let ok = stream.and_then(|operation| operation.responses.responses.get_mut("200"));
        if let Some(RefOr::T(response)) = ok
            && let Some(RefOr::T(content)) = response.content.get_mut("text/event-stream")
        {
            content.extensions = Some(Extensions::from_iter([("x-sse-events", tally)]));
        }
    }
}

/// The document, made once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises"));

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "operations", responses(
    (status = 200, description = "The OpenAPI 3.1 description of the API.", body = OpenApiDocument),
))]
pub async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

/// Declares a shared error answer (`{"error": "..."}`) for the document's components.
macro_rules! error_response {
    ($(#[$doc:meta])* $name:ident, $description:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error(concat!($description)))
            }
        }
    };
}

error_response!(
    /// `400`.
    BadRequest,
    "A bad parameter (`period` or `limit`)."
);
error_response!(
    /// `404`.
    NotFound,
    "No such indicator code (or no such path)."
);
error_response!(
    /// `503`.
    Unavailable,
    "The database did not answer."
);

fn error(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build().into()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::DOCUMENT;

    /// Every `$ref` of `node`, at any depth.
    fn references<'a>(node: &'a Value, found: &mut Vec<&'a str>) {
        match node {
            Value::Object(map) => {
                found.extend(map.get("$ref").and_then(Value::as_str));
                map.values().for_each(|value| references(value, found));
            }
            Value::Array(values) => values.iter().for_each(|value| references(value, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_of_the_document_resolves() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(found.len() > 20, "{found:?}");
        for reference in found {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("not local: {reference}"));
            assert!(document.pointer(pointer).is_some(), "dangling {reference}");
        }
    }
}
