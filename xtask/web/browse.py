"""Walks the web view of `dagster-wandb server` in a real headless Chromium (Selenium, chromedriver from Debian),
as a person would: sign in, open the project, click to the model, its files and lineage graph, then the training
run and its chart. Asserts on the DOM and keeps a screenshot of each page.

Usage: browse.py BASE_URL API_KEY SCREENSHOT_DIR HOSTILE_PATH
Prints one JSON object of what it checked; exits non-zero on the first failed check.
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, key, shots, hostile_path = sys.argv[1:5]
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
    check(driver.find_element(By.ID, "run-state").text == "finished", "the train run finished")
    charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart")
    check(len(charts) >= 1, "the run page draws a chart per history key")
    points = {c.get_attribute("data-key"): int(c.get_attribute("data-points")) for c in charts}
    check(all(n > 1 for n in points.values()), f"each chart draws its points: {points}")
    for chart in charts:
        drawn = chart.find_element(By.CSS_SELECTOR, "polyline.series").get_attribute("points").split()
        check(len(drawn) == int(chart.get_attribute("data-points")), "the polyline has the points it says")

    # Hostile names render as text: no script element, no alert, the markup visible as characters.
    driver.get(f"{base}{hostile_path}")
    shot("hostile")
    check(driver.find_elements(By.TAG_NAME, "script") == [], "no script element on a page of hostile names")
    check("<script>alert(1)</script>" in driver.find_element(By.TAG_NAME, "body").text,
          "the hostile text shows as text")
    try:
        driver.switch_to.alert
        check(False, "an alert opened")
    except Exception:  # noqa: BLE001 - no alert is the expected outcome
        checked.append("no alert opened")
finally:
    driver.quit()
print(json.dumps({"checked": checked}))
