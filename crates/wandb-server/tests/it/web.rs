//! The web view on the server: sign-in, sessions, who sees what, and nothing leaves the pages unescaped.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use wandb_server::ServerOptions;

use crate::support::Served;

const ALICE: &str = "alice-web-0123456789abcdef0123456789abcdef";
const BOB: &str = "bob-web-0123456789abcdef0123456789abcdef012";

fn users() -> wandb_server::Users {
    wandb_server::Users::from_json(&format!(
        r#"{{"users": [
            {{"name": "alice", "api_key": "{ALICE}", "entities": ["alice"]}},
            {{"name": "bob", "api_key": "{BOB}", "entities": ["bob"]}}
        ]}}"#
    ))
    .unwrap()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in with `key`; the session cookie (`name=value`).
async fn sign_in(served: &Served, key: &str, next: &str) -> reqwest::Response {
    browser()
        .post(served.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("api_key={key}&next={next}"))
        .send()
        .await
        .unwrap()
}

fn cookie_of(response: &reqwest::Response) -> String {
    let set = response.headers().get(SET_COOKIE).expect("a session cookie").to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_show_only_the_users_entities() {
    let served = Served::start(ServerOptions { users: Some(users()), ..Default::default() }).await;
    served.log_file(Some(ALICE), "alice", "alices-data", b"alice's").await;
    served.log_file(Some(BOB), "bob", "bobs-data", b"bob's").await;
    let http = browser();

    // No session: the sign-in form, coming back to the page asked for.
    let answer = http.get(served.url("/alice/proj")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/login?next=/alice/proj");
    let form = http.get(served.url("/login?next=/alice/proj")).send().await.unwrap().text().await.unwrap();
    assert!(form.contains("name=\"api_key\"") && form.contains("value=\"/alice/proj\""), "{form}");

    // A wrong key: the form again, 401, no cookie.
    let wrong = sign_in(&served, &"x".repeat(40), "/alice/proj").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());

    let signed = sign_in(&served, ALICE, "/alice/proj").await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed.headers()[LOCATION], "/alice/proj");
    let set_cookie = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = cookie_of(&signed);
    assert!(cookie.len() > 60, "the token carries 256 bits: {cookie}");

    let page = http.get(served.url("/alice/proj")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(page.text().await.unwrap().contains("alices-data"));
    // Another user's entity looks exactly like one that does not exist; the home page lists only alice.
    for path in ["/bob", "/bob/proj", "/bob/proj/artifacts/dataset/bobs-data/v0/files"] {
        let answer = http.get(served.url(path)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(answer.text().await.unwrap().contains("<h1>Not found</h1>"), "{path}");
    }
    let home = http.get(served.url("/")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("href=\"/alice\"") && !home.contains("href=\"/bob\""), "{home}");

    // A file downloads through a signed storage URL, which works without the cookie (as a presigned URL).
    let files = http
        .get(served.url("/alice/proj/artifacts/dataset/alices-data/v0/files"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let href = files.split("href=\"").find(|s| s.contains("/storage/objects/")).expect("a download link");
    let href = href.split('"').next().unwrap().replace("&amp;", "&");
    let body = http.get(&href).send().await.unwrap();
    assert_eq!(body.status(), StatusCode::OK, "{href}");
    assert_eq!(body.bytes().await.unwrap().as_ref(), b"alice's");

    // Signing out ends the session.
    let out = http.post(served.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    assert!(out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let after = http.get(served.url("/alice/proj")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_never_sends_the_browser_elsewhere() {
    let served = Served::start(ServerOptions { users: Some(users()), ..Default::default() }).await;
    for next in ["//evil.example/x", "https://evil.example/", "/\\evil.example"] {
        let signed = sign_in(&served, ALICE, &next.replace('/', "%2F").replace(':', "%3A")).await;
        assert_eq!(signed.headers()[LOCATION], "/", "{next}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_server_shows_its_pages_without_signing_in() {
    let served = Served::start(ServerOptions::default()).await;
    served.log_file(None, "team", "shared", b"x").await;
    let answer = browser().get(served.url("/team/proj/artifacts/dataset/shared/v0")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    // The W&B protocol's own routes keep answering as before.
    let graphql = browser().get(served.url("/graphql")).send().await.unwrap();
    assert_ne!(graphql.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_page_is_a_404_and_signed_in_pages_can_sign_out() {
    let served = Served::start(ServerOptions { users: Some(users()), ..Default::default() }).await;
    served.log_file(Some(ALICE), "alice", "alices-data", b"alice's").await;
    let http = browser();
    // What browsers and crawlers ask for by themselves is not sent to the sign-in form, signed in or not.
    let signed = sign_in(&served, ALICE, "/").await;
    let cookie = cookie_of(&signed);
    for path in ["/favicon.ico", "/robots.txt", "/.well-known/security.txt", "/alice/apple-touch-icon.png"] {
        let anonymous = http.get(served.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::NOT_FOUND, "{path}");
        let with_session = http.get(served.url(path)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(with_session.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A page path still goes to the sign-in form without a session, whether or not its entity exists.
    for path in ["/alice", "/nobody", "/bob/proj/runs/x"] {
        let answer = http.get(served.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{path}");
    }
    // Signed in, every page carries the sign-out form; it signs out.
    let page = http.get(served.url("/alice")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form class=\"logout\" method=\"post\" action=\"/logout\">"), "{page}");
    let missing = http.get(served.url("/alice/nothing")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("action=\"/logout\""));
    http.post(served.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    let after = http.get(served.url("/alice")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_server_has_no_sign_out_control() {
    let served = Served::start(ServerOptions::default()).await;
    served.log_file(None, "team", "shared", b"x").await;
    let answer = browser().get(served.url("/team")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(!page.contains("/logout"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_by_spans_projects_but_only_the_callers_entities() {
    let served = Served::start(ServerOptions { users: Some(users()), ..Default::default() }).await;
    let id = served.log_file(Some(ALICE), "alice", "alices-data", b"alice's").await;
    // Runs of another project of alice's, and of bob's (as an admin could record), used the version.
    let store = wandb_store::EmbeddedStore::open(served.dir.path().join("store")).unwrap();
    let version = store.artifact_by_id(&id).unwrap();
    for (entity, project, run) in [("alice", "other", "a-1"), ("bob", "proj", "b-1")] {
        let project = wandb_store::ProjectRef::new(entity, project).unwrap();
        let options = wandb_store::RunOptions { id: Some(run.to_owned()), ..Default::default() };
        store.create_run(&project, options).unwrap();
        store.record_use(&project, run, &version).unwrap();
    }
    let query = "query ArtifactUsedBy($id: ID!) { artifact(id: $id) { usedBy { edges { node { name project { name entity { name } } } } } } }";
    let (status, answer) = served.graphql(Some(ALICE), "ArtifactUsedBy", query, serde_json::json!({"id": id})).await;
    assert_eq!(status, 200, "{answer}");
    let users: Vec<String> = answer
        .pointer("/data/artifact/usedBy/edges")
        .and_then(serde_json::Value::as_array)
        .unwrap()
        .iter()
        .map(|e| {
            let node = &e["node"];
            format!("{}/{}/{}", node["project"]["entity"]["name"], node["project"]["name"], node["name"])
                .replace('"', "")
        })
        .collect();
    assert_eq!(users, ["alice/other/a-1"], "bob's run is not named to alice");
}
