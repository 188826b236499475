"""Walks the web view of `dagster-wandb server` in a real headless Chromium (Selenium, chromedriver from Debian),
as a person would: sign in, open the project, click to the model, its files and lineage graph, then the training
run and its charts (as many points as the run logged); the pages of an artifact and a run named with markup, and
a use across projects; then sign out. Asserts on the DOM and keeps a screenshot of each page.

Usage: browse.py BASE_URL API_KEY SCREENSHOT_DIR EXPECTED_JSON
EXPECTED_JSON: hostile_artifact (a version's path), hostile_markup, hostile_run (a run's path), hostile_run_name,
train_run (its id), train_rows (history rows), train_points (points per chart key).
Prints one JSON object of what it checked; exits non-zero on the first failed check.
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, key, shots, expected_json = sys.argv[1:5]
expected = json.loads(expected_json)
os.makedirs(shots, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1000",
             "--disable-gpu", "--no-first-run"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
checked = []


def check(condition, what):
    if not condition:
        driver.save_screenshot(os.path.join(shots, "failure.png"))
        print(f"FAILED: {what} (at {driver.current_url})", file=sys.stderr)
        print(driver.page_source[:4000], file=sys.stderr)
        driver.quit()
        sys.exit(1)
    checked.append(what)


def wait_until(predicate, what):
    """Waits (up to 10 s) for a navigation a click started; then checks."""
    try:
        WebDriverWait(driver, 10).until(lambda d: predicate())
    except Exception:  # noqa: BLE001 - the check below reports it
        pass
    check(predicate(), what)


def shot(name):
    driver.save_screenshot(os.path.join(shots, f"{name}.png"))


def click_link(text):
    driver.find_element(By.LINK_TEXT, text).click()


def nothing_ran(page):
    """No script element, no alert, no element a markup attribute would have made."""
    check(driver.find_elements(By.TAG_NAME, "script") == [], f"{page}: no script element")
    check(driver.find_elements(By.CSS_SELECTOR, 'img[src="x"]') == [], f"{page}: no element made of markup")
    try:
        driver.switch_to.alert
        check(False, f"{page}: an alert opened")
    except Exception:  # noqa: BLE001 - no alert is the expected outcome
        checked.append(f"{page}: no alert opened")


try:
    # Not signed in: every page sends the browser to the sign-in form first.
    driver.get(f"{base}/local/artifacts-example")
    check("/login" in driver.current_url, "an unsigned browser is sent to the sign-in form")
    driver.find_element(By.NAME, "api_key").send_keys("not-the-key-" + "x" * 30)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_until(lambda: "not one of this server" in driver.page_source, "a wrong key is refused")
    driver.find_element(By.NAME, "api_key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_until(lambda: driver.current_url.endswith("/local/artifacts-example"),
               "signing in returns to the page asked for")
    cookie = driver.get_cookie("dw_session")
    check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict",
          "the session cookie is HttpOnly and SameSite=Strict")
    shot("project")
    collections = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#collections tbody tr")]
    check(any("trained-model" in row for row in collections), "the project lists trained-model")
    runs = " ".join(row.text for row in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr"))
    check(all(job in runs for job in ("load-data", "preprocess-data", "train")), f"the project lists the runs: {runs}")

    click_link("trained-model")
    wait_until(lambda: driver.current_url.endswith("/artifacts/model/trained-model"), "clicking a collection opens it")
    versions = driver.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    check(len(versions) >= 1 and "best" in versions[0].text, "the versions list shows v0 with alias best")
    click_link("v0")
    wait_until(lambda: driver.find_elements(By.ID, "overview"), "the version opens")
    shot("overview")
    overview = driver.find_element(By.ID, "overview").text
    check("trained-model:v0" in overview and "model" in overview, "the overview names the version")

    click_link("Files")
    wait_until(lambda: driver.current_url.endswith("/files"), "the Files tab opens")
    shot("files")
    files = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#files tbody tr")]
    check(len(files) >= 1, f"the files tab lists the model's files: {files}")
    downloads = driver.find_elements(By.LINK_TEXT, "download")
    href = downloads[0].get_attribute("href") if downloads else ""
    check("/storage/objects/" in href and "X-Wandb-Signature=" in href and "X-Wandb-Expires=" in href,
          f"files download through signed storage URLs: {href}")

    click_link("Lineage")
    wait_until(lambda: driver.current_url.endswith("/lineage"), "the Lineage tab opens")
    shot("lineage")
    nodes = {n.get_attribute("data-name"): n.get_attribute("data-kind")
             for n in driver.find_elements(By.CSS_SELECTOR, "#lineage-graph a.node")}
    for artifact in ("mnist-raw:v0", "mnist-preprocess:v0", "trained-model:v0"):
        check(nodes.get(artifact) == "artifact", f"the graph has the artifact node {artifact}")
    check(list(nodes.values()).count("run") == 3, f"the graph has the three runs: {nodes}")
    edges = [(e.get_attribute("data-from"), e.get_attribute("data-kind"), e.get_attribute("data-to"))
             for e in driver.find_elements(By.CSS_SELECTOR, "#lineage-graph path.edge")]
    check(len(edges) == 5, f"five edges: {edges}")
    check(sum(1 for e in edges if e[1] == "used") == 2 and sum(1 for e in edges if e[1] == "logged") == 3,
          "two used and three logged edges")

    def x_of(name):
        node = driver.find_element(By.CSS_SELECTOR, f'#lineage-graph a.node[data-name="{name}"] rect')
        return float(node.get_attribute("x"))

    check(x_of("mnist-raw:v0") < x_of("mnist-preprocess:v0") < x_of("trained-model:v0"),
          "the graph runs left to right, raw to model")
    rects = [(float(r.get_attribute("x")), float(r.get_attribute("y")))
             for r in driver.find_elements(By.CSS_SELECTOR, "#lineage-graph a.node rect")]
    check(len(set(rects)) == len(rects), "no two nodes overlap")

    # The training run: the run that logged the model (the edge into trained-model:v0).
    producer = next(e[0] for e in edges if e[2] == "trained-model:v0")
    driver.find_element(By.CSS_SELECTOR, f'#lineage-graph a.node[data-name="{producer}"]').click()
    wait_until(lambda: "/runs/" in driver.current_url and driver.find_elements(By.ID, "run-state"),
               "clicking a run node opens the run")
    shot("run")
    check(driver.current_url.endswith(f"/runs/{expected['train_run']}"), "the producer is the train run")
    check(driver.find_element(By.ID, "run-state").text == "finished", "the train run finished")
    check(driver.find_element(By.ID, "history-rows").text == str(expected["train_rows"]),
          f"the run page counts the {expected['train_rows']} history rows the job logged")
    charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart")
    logged = expected["train_points"]
    keys = sorted(c.get_attribute("data-key") for c in charts)
    check(keys == sorted(logged), f"a chart per history key the job logged: {keys} vs {sorted(logged)}")
    for chart in charts:
        name = chart.get_attribute("data-key")
        total, points = int(chart.get_attribute("data-total")), int(chart.get_attribute("data-points"))
        check(total == logged[name], f"{name}: the chart has the {logged[name]} points the job logged ({total})")
        # At most 1,000 drawn: all of them below that, each bucket's extremes above it.
        check(points == total if total <= 1000 else 500 <= points <= 1000, f"{name}: {points} of {total} drawn")
        drawn = chart.find_element(By.CSS_SELECTOR, "polyline.series").get_attribute("points").split()
        check(len(drawn) == points, f"{name}: the polyline has the {points} points it says ({len(drawn)})")

    # Hostile names render as text, on every tab of the hostile artifact.
    markup = expected["hostile_markup"]
    for tab in ("overview", "metadata", "files"):
        driver.get(f"{base}{expected['hostile_artifact']}/{tab}")
        shot(f"hostile-{tab}")
        check(driver.find_elements(By.ID, "overview" if tab == "overview" else "files") != [] or tab == "metadata",
              f"the hostile artifact's {tab} tab opens")
        nothing_ran(f"hostile {tab}")
        body = driver.find_element(By.TAG_NAME, "body").text
        shown = {"overview": markup, "metadata": markup, "files": "<img src=x onerror=alert(2)>.txt"}[tab]
        check(shown in body, f"the hostile {tab} tab shows {shown!r} as text")
    # The file named with markup, previewed: its markup content shows as text.
    driver.find_element(By.PARTIAL_LINK_TEXT, "onerror").click()
    wait_until(lambda: "preview=" in driver.current_url, "clicking the hostile file previews it")
    shot("hostile-preview")
    nothing_ran("hostile preview")
    check(markup in driver.find_element(By.CSS_SELECTOR, "pre.preview").text, "the preview shows the markup as text")

    # A run named with markup, in another project: its name as text, and the artifact it used in its own project.
    driver.get(f"{base}{expected['hostile_run']}")
    shot("hostile-run")
    nothing_ran("hostile run")
    check(driver.find_element(By.TAG_NAME, "h1").text == expected["hostile_run_name"], "the run's name shows as text")
    check(any(c.get_attribute("data-key") == "<b>markup</b>" for c in driver.find_elements(By.CSS_SELECTOR,
                                                                                              "figure.chart")),
          "a history key with markup is charted under its name")
    used = driver.find_element(By.PARTIAL_LINK_TEXT, "mnist-raw:v0")
    check(used.get_attribute("href").endswith("/local/artifacts-example/artifacts/dataset/mnist-raw/v0"),
          f"the used artifact links to its own project: {used.get_attribute('href')}")
    used.click()
    wait_until(lambda: driver.find_elements(By.ID, "overview"), "the used artifact's page opens")
    check("mnist-raw:v0" in driver.find_element(By.TAG_NAME, "h1").text, "it is mnist-raw:v0")
    click_link("Lineage")
    wait_until(lambda: driver.current_url.endswith("/lineage"), "its Lineage tab opens")
    shot("lineage-across-projects")
    runs = [n.get_attribute("data-name") for n in driver.find_elements(By.CSS_SELECTOR,
                                                                       '#lineage-graph a.node[data-kind="run"]')]
    check(expected["hostile_run_name"] in runs, f"raw's lineage shows the run of the other project: {runs}")
    nothing_ran("lineage across projects")

    # Signing out: the control on every page ends the session.
    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_until(lambda: "/login" in driver.current_url, "signing out shows the sign-in form")
    driver.get(f"{base}/local/artifacts-example")
    check("/login" in driver.current_url, "after signing out, pages need signing in again")
finally:
    driver.quit()
print(json.dumps({"checked": checked}))
