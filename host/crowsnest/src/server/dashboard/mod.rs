//! The web dashboard at `/`: server-rendered pages (minijinja templates
//! embedded in the binary), one CSS and one JavaScript file, nothing fetched
//! from elsewhere (a strict Content-Security-Policy says so to the browser).
//!
//! Pages: containers (status, filters, sorting, counts, "Watch now" with
//! progress, live via `/api/events`), one container (rescan, triggers,
//! update with a dry-run preview, history), registries, triggers, watchers
//! and plugins (secrets already masked by the engine). The buttons call the
//! JSON API with the session cookie and its CSRF token ([`session`]).

pub mod session;
mod view;

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{middleware, Form, Router};
use minijinja::Environment;
use serde::{Deserialize, Serialize};

use super::AppState;
use crowsnest_model::{ContainerObject, UpdateOutcome};
use session::Session;

/// The templates, embedded at build time.
const TEMPLATES: &[(&str, &str)] = &[
    ("head.html", include_str!("templates/head.html")),
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("containers.html", include_str!("templates/containers.html")),
    ("row.html", include_str!("templates/row.html")),
    ("container.html", include_str!("templates/container.html")),
    ("items.html", include_str!("templates/items.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// The stylesheet.
pub const CSS: &str = include_str!("assets/app.css");
/// The script.
pub const JS: &str = include_str!("assets/app.js");

/// Everything the browser may load comes from this origin; no inline code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes (pages, login, assets); the API routes it calls live in `http`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(containers_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/containers/{id}", get(container_page))
        .route("/registries", get(registries_page))
        .route("/triggers", get(triggers_page))
        .route("/watchers", get(watchers_page))
        .route("/plugins", get(plugins_page))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .layer(middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        // `no-referrer` would make the browser send `Origin: null` on form posts.
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        for (name, text) in TEMPLATES {
            // The templates are part of the binary; the unit tests render each one.
            if let Err(error) = environment.add_template(name, text) {
                tracing::error!(template = name, %error, "dashboard template does not parse");
            }
        }
        environment
    })
}

/// `value` as a template value.
fn serialized<T: Serialize>(value: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

/// Renders `template` with `context`; a template error is a 500 page naming it.
fn render(template: &str, context: minijinja::Value) -> Response {
    let rendered = environment()
        .get_template(template)
        .and_then(|template| template.render(context));
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(template, %error, "dashboard page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the dashboard page {template} failed to render: {error}"),
            )
                .into_response()
        }
    }
}

/// What every page shows in its frame.
#[derive(Serialize)]
struct Frame<'a> {
    title: &'a str,
    page: &'a str,
    csrf: String,
    /// No token is configured: everyone who reaches the port is let in.
    open: bool,
}

/// A logged-in page view: the session, and the cookie to set when the
/// session was started for this view (no token configured).
struct Viewer {
    session: Session,
    set_cookie: Option<HeaderValue>,
    open: bool,
}

impl Viewer {
    fn frame<'a>(&self, title: &'a str, page: &'a str) -> Frame<'a> {
        Frame {
            title,
            page,
            csrf: self.session.csrf.clone(),
            open: self.open,
        }
    }

    fn respond(self, response: Response) -> Response {
        let mut response = response;
        if let Some(cookie) = self.set_cookie {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// The viewer of a page, or the redirect to the login form.
fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Viewer, Redirect> {
    let open = !state.token.is_set();
    if let Some(session) = state.sessions.from_headers(headers) {
        return Ok(Viewer {
            session,
            set_cookie: None,
            open,
        });
    }
    if open {
        let session = state.sessions.create();
        let set_cookie = Some(session::set_cookie(headers, Some(&session.id)));
        return Ok(Viewer {
            session,
            set_cookie,
            open,
        });
    }
    Err(Redirect::to("/login"))
}

/// `Ok(value)` or the response to send instead.
type Page<T> = Result<T, Response>;

fn store_failure(error: impl std::fmt::Display) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("the store could not be read: {error}"),
    )
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let mut response = render(
        "error.html",
        minijinja::context! { title => "Error", message => message },
    );
    *response.status_mut() = status;
    response
}

async fn containers_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let result: Page<Response> = async {
        let viewer = viewer(&state, &headers).map_err(IntoResponse::into_response)?;
        let snapshot = state.containers().await.map_err(store_failure)?;
        let table = view::Table::new(&snapshot.containers);
        let page = render(
            "containers.html",
            minijinja::context! {
                frame => serialized(&viewer.frame("Containers", "containers")),
                table => serialized(&table),
                actions => state.coordinator.actions().is_some(),
            },
        );
        Ok(viewer.respond(page))
    }
    .await;
    result.unwrap_or_else(|response| response)
}

async fn container_page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result: Page<Response> = async {
        let viewer = viewer(&state, &headers).map_err(IntoResponse::into_response)?;
        let container = state
            .store
            .get_container::<ContainerObject>(&id)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| {
                error_page(
                    StatusCode::NOT_FOUND,
                    &format!("no container with id `{id}`"),
                )
            })?;
        let detected = state
            .store
            .update_history(&container.id)
            .await
            .map_err(store_failure)?;
        let attempts: Vec<UpdateOutcome> = state
            .store
            .update_attempts(
                &container.watcher,
                &container.name,
                crowsnest_engine::actions::HISTORY_LIMIT,
            )
            .await
            .map_err(store_failure)?;
        let triggers: Vec<String> = state
            .coordinator
            .triggers()
            .summaries()
            .into_iter()
            .map(|trigger| trigger.name)
            .collect();
        let row = view::Row::new(&container);
        let page = render(
            "container.html",
            minijinja::context! {
                frame => serialized(&viewer.frame(&row.name, "container")),
                row => serialized(&row),
                detected => serialized(&view::detected(&detected)),
                attempts => serialized(&attempts),
                triggers => triggers,
                actions => state.coordinator.actions().is_some(),
            },
        );
        Ok(viewer.respond(page))
    }
    .await;
    result.unwrap_or_else(|response| response)
}

fn items_page(
    state: &AppState,
    headers: &HeaderMap,
    title: &str,
    page: &str,
    items: Vec<view::Item>,
) -> Response {
    match viewer(state, headers) {
        Ok(viewer) => {
            let rendered = render(
                "items.html",
                minijinja::context! { frame => serialized(&viewer.frame(title, page)), items => serialized(&items) },
            );
            viewer.respond(rendered)
        }
        Err(redirect) => redirect.into_response(),
    }
}

async fn registries_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let items = view::items_from_json(&state.info.registries);
    items_page(&state, &headers, "Registries", "registries", items)
}

async fn triggers_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let summaries =
        serde_json::to_value(state.coordinator.triggers().summaries()).unwrap_or_default();
    let items = view::items_from_json(&summaries);
    items_page(&state, &headers, "Triggers", "triggers", items)
}

async fn watchers_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let watchers = serde_json::to_value(&state.info.watchers).unwrap_or_default();
    let items = view::items_from_json(&watchers);
    items_page(&state, &headers, "Watchers", "watchers", items)
}

async fn plugins_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let items = state.info.plugins.iter().map(view::Item::plugin).collect();
    items_page(&state, &headers, "Plugins", "plugins", items)
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The API token.
    #[serde(default)]
    pub token: String,
}

fn login_form(status: StatusCode, message: Option<&str>) -> Response {
    let mut response = render(
        "login.html",
        minijinja::context! { title => "Log in", message => message },
    );
    *response.status_mut() = status;
    response
}

async fn login_page(State(state): State<Arc<AppState>>) -> Response {
    if !state.token.is_set() {
        return Redirect::to("/").into_response();
    }
    login_form(StatusCode::OK, None)
}

async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !session::same_origin(&headers) {
        return login_form(
            StatusCode::FORBIDDEN,
            Some("This login came from another site and was refused."),
        );
    }
    let token = form.map(|Form(form)| form.token).unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        return login_form(
            StatusCode::BAD_REQUEST,
            Some("Enter the API token (the [server] token of the configuration)."),
        );
    }
    let authorization = format!("Bearer {token}");
    if state.token.check(Some(authorization.as_bytes())).is_err() {
        return login_form(
            StatusCode::UNAUTHORIZED,
            Some("That token is not the configured one."),
        );
    }
    let session = state.sessions.create();
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(&headers, Some(&session.id)),
    );
    response
}

/// The logout form's fields.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let presented = form.map(|Form(form)| form.csrf).unwrap_or_default();
    if let Some(current) = state.sessions.from_headers(&headers) {
        if !session::same_origin(&headers) || !session::csrf_matches(&current, Some(&presented)) {
            return session::forbidden_cross_site();
        }
        state.sessions.remove(&current.id);
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(&headers, None));
    response
}

#[cfg(test)]
mod tests;
