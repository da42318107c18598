//! Fake social platforms on 127.0.0.1:0: Mastodon, YouTube, X and Facebook, each under its
//! own path prefix, answering in the platforms' documented JSON shapes. A test sets each
//! post's counts, deletes posts, scripts answers (429, 5xx, 401, ...) and takes a platform
//! down; the fake counts the requests each platform received.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub const X_TOKEN: &str = "x-bearer-0123456789abcdef";
pub const YOUTUBE_KEY: &str = "AIzaYouTubeKey0123456789";
pub const FACEBOOK_TOKEN: &str = "EAAFacebookPageToken0123";

/// The totals of one post, whatever its platform.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub likes: i64,
    pub shares: i64,
    pub quotes: i64,
    pub comments: i64,
    pub views: i64,
    pub impressions: i64,
}

/// A scripted answer: status, headers and JSON body.
type Scripted = (u16, Vec<(&'static str, String)>, Value);

#[derive(Default)]
struct FakeState {
    posts: HashMap<(&'static str, String), Counts>,
    scripted: HashMap<&'static str, VecDeque<Scripted>>,
    down: HashSet<&'static str>,
    requests: HashMap<&'static str, usize>,
}

type Shared = Arc<Mutex<FakeState>>;

pub struct Fake {
    base: String,
    state: Shared,
}

impl Fake {
    pub async fn start() -> Fake {
        let state = Shared::default();
        let app = Router::new()
            .route("/mastodon/api/v1/statuses/{id}", get(mastodon))
            .route("/youtube/videos", get(youtube))
            .route("/x/2/tweets", get(x))
            .route("/facebook/{id}", get(facebook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { base, state }
    }

    /// The base URL of `platform`'s API.
    pub fn url(&self, platform: &str) -> String {
        format!("{}/{platform}", self.base)
    }

    pub fn set(&self, platform: &'static str, id: &str, counts: Counts) {
        self.state.lock().unwrap().posts.insert((platform, id.to_owned()), counts);
    }

    pub fn delete(&self, platform: &'static str, id: &str) {
        self.state.lock().unwrap().posts.remove(&(platform, id.to_owned()));
    }

    /// The next request to `platform` gets this answer instead of the normal one.
    pub fn script(&self, platform: &'static str, status: u16, headers: &[(&'static str, &str)], body: Value) {
        let headers = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self.state.lock().unwrap().scripted.entry(platform).or_default().push_back((status, headers, body));
    }

    /// While down, `platform` answers every request with a 503.
    pub fn set_down(&self, platform: &'static str, down: bool) {
        let mut state = self.state.lock().unwrap();
        if down {
            state.down.insert(platform)
        } else {
            state.down.remove(platform)
        };
    }

    pub fn requests(&self, platform: &'static str) -> usize {
        self.state.lock().unwrap().requests.get(platform).copied().unwrap_or(0)
    }
}

/// Counts the request, then answers for the platform as a whole if it must: down, a
/// scripted answer, or a missing or wrong credential.
fn intercept(
    state: &Shared,
    platform: &'static str,
    headers: &HeaderMap,
    credential: Option<(&str, String)>,
) -> Option<Response> {
    let mut state = state.lock().unwrap();
    *state.requests.entry(platform).or_default() += 1;
    if state.down.contains(platform) {
        return Some((StatusCode::SERVICE_UNAVAILABLE, "<html>503 Service Unavailable</html>").into_response());
    }
    if let Some((status, extra, body)) = state.scripted.get_mut(platform).and_then(VecDeque::pop_front) {
        let mut response = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
        for (name, value) in extra {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return Some(response);
    }
    let (header, expected) = credential?;
    let given = headers.get(header).and_then(|v| v.to_str().ok()).unwrap_or_default();
    (given != expected)
        .then(|| (StatusCode::UNAUTHORIZED, axum::Json(json!({"title": "Unauthorized"}))).into_response())
}

fn counts(state: &Shared, platform: &'static str, id: &str) -> Option<Counts> {
    state.lock().unwrap().posts.get(&(platform, id.to_owned())).copied()
}

/// `GET /api/v1/statuses/:id`: a Status entity, or the instance's JSON 404.
async fn mastodon(State(state): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = intercept(&state, "mastodon", &headers, None) {
        return response;
    }
    match counts(&state, "mastodon", &id) {
        Some(c) => axum::Json(json!({
            "id": id, "created_at": "2026-11-02T09:00:00.000Z", "visibility": "public",
            "url": format!("https://mastodon.example/@ecpat/{id}"), "content": "<p>Rapport</p>",
            "replies_count": c.comments, "reblogs_count": c.shares, "favourites_count": c.likes,
            "account": {"id": "1", "username": "ecpat"},
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "Record not found"}))).into_response(),
    }
}

/// `GET /youtube/v3/videos?part=statistics&id=...`: the videos found, as `items`.
async fn youtube(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = intercept(&state, "youtube", &headers, Some(("x-goog-api-key", YOUTUBE_KEY.into()))) {
        return response;
    }
    assert_eq!(query.get("part").map(String::as_str), Some("statistics"));
    let ids: Vec<&str> = query.get("id").map(|ids| ids.split(',').collect()).unwrap_or_default();
    assert!(ids.len() <= 50, "YouTube takes at most 50 ids per call, got {}", ids.len());
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| counts(&state, "youtube", id).map(|c| (id, c)))
        .map(|(id, c)| {
            json!({"kind": "youtube#video", "etag": "e", "id": id, "statistics": {
                "viewCount": c.views.to_string(), "likeCount": c.likes.to_string(),
                "favoriteCount": "0", "commentCount": c.comments.to_string()}})
        })
        .collect();
    let page = json!({"totalResults": items.len(), "resultsPerPage": items.len()});
    axum::Json(json!({"kind": "youtube#videoListResponse", "etag": "e", "items": items, "pageInfo": page}))
        .into_response()
}

/// `GET /2/tweets?ids=...&tweet.fields=public_metrics`: `data` and, for missing posts, `errors`.
async fn x(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    if let Some(response) = intercept(&state, "x", &headers, Some(("authorization", format!("Bearer {X_TOKEN}")))) {
        return response;
    }
    assert_eq!(query.get("tweet.fields").map(String::as_str), Some("public_metrics"));
    let ids: Vec<&str> = query.get("ids").map(|ids| ids.split(',').collect()).unwrap_or_default();
    assert!(ids.len() <= 100, "X takes at most 100 ids per call, got {}", ids.len());
    let (mut data, mut errors) = (vec![], vec![]);
    for id in ids {
        match counts(&state, "x", id) {
            Some(c) => data.push(json!({"id": id, "text": "Rapport", "edit_history_tweet_ids": [id],
                "public_metrics": {"retweet_count": c.shares, "reply_count": c.comments, "like_count": c.likes,
                    "quote_count": c.quotes, "bookmark_count": 1, "impression_count": c.impressions}})),
            None => errors.push(json!({"value": id, "detail": format!("Could not find tweet with ids: [{id}]."),
                "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids", "resource_id": id,
                "type": "https://api.twitter.com/2/problems/resource-not-found"})),
        }
    }
    let mut body = json!({});
    if !data.is_empty() {
        body["data"] = Value::from(data);
    }
    if !errors.is_empty() {
        body["errors"] = Value::from(errors);
    }
    axum::Json(body).into_response()
}

/// `GET /{post-id}?fields=shares,reactions.summary(...),comments.summary(...)`.
async fn facebook(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let credential = Some(("authorization", format!("Bearer {FACEBOOK_TOKEN}")));
    if let Some(response) = intercept(&state, "facebook", &headers, credential) {
        return response;
    }
    assert_eq!(query.get("fields").map(String::as_str), Some(ecpat_indicators::collector::facebook::FIELDS));
    match counts(&state, "facebook", &id) {
        Some(c) => {
            let mut post = json!({"id": id,
                "reactions": {"data": [], "summary": {"total_count": c.likes, "viewer_reaction": "NONE"}},
                "comments": {"data": [], "summary": {"order": "ranked", "total_count": c.comments, "can_comment": true}}});
            // The Graph API leaves `shares` out for a post never shared.
            if c.shares > 0 {
                post["shares"] = json!({"count": c.shares});
            }
            axum::Json(post).into_response()
        }
        None => {
            let error =
                json!({"error": {"message": "Object does not exist", "type": "GraphMethodException", "code": 100}});
            (StatusCode::NOT_FOUND, axum::Json(error)).into_response()
        }
    }
}
