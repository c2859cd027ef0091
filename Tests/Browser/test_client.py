"""The web client in a real browser (Debian's Chromium, driven by Playwright), against a served
demo network: two institutions find each other, propose, accept, agree on an agreement until it is
active, and talk in the partnership's room while one of them drops off the network and comes back.

    python Tests/Browser/test_client.py BASE_URL OUTPUT_FOLDER

Each step leaves a screenshot in OUTPUT_FOLDER; a failing step leaves its screenshot and every
page's console log there too, and the run exits 1.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import urllib.request
from contextlib import contextmanager

from playwright.sync_api import expect, sync_playwright

BASE = sys.argv[1].rstrip("/")
OUT = sys.argv[2]
PASSWORD = "Accord-Demo-2026"
TIMEOUT = 15_000
XSS_NAME = 'University of Amsterdam <script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


class Browser:
    """The pages of the run, their console logs, and the numbered steps' screenshots."""

    def __init__(self, out):
        self.out = out
        self.pages = {}
        self.logs = {}
        self.step_number = 0

    def page(self, name, context):
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        log = self.logs.setdefault(name, [])
        page.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
        page.on("dialog", lambda dialog: (log.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        self.pages[name] = page
        return page

    @contextmanager
    def step(self, title, *names):
        self.step_number += 1
        slug = f"{self.step_number:02d}-{re.sub('[^a-z0-9]+', '-', title.lower()).strip('-')}"
        print(f"step {slug}", flush=True)
        try:
            yield
        except BaseException:
            for name in names or self.pages:
                self.pages[name].screenshot(path=os.path.join(self.out, f"{slug}-{name}-FAILED.png"), full_page=True)
            self.write_logs()
            raise
        for name in names or self.pages:
            self.pages[name].screenshot(path=os.path.join(self.out, f"{slug}-{name}.png"), full_page=True)

    def write_logs(self):
        for name, lines in self.logs.items():
            with open(os.path.join(self.out, f"console-{name}.log"), "w") as file:
                file.write("\n".join(lines) + "\n")


def display_name(names):
    """The name the client shows: English first, else the first."""
    return next((n["value"] for n in names if n["lang"] == "en"), names[0]["value"])


def session_token(page):
    """The bearer token the page's client keeps."""
    return page.evaluate("() => sessionStorage.getItem('accord.session')")


def me_id(page):
    """The signed-in user's id, as the page's session sees it."""
    me, _ = call("GET", "/v1/me", session_token(page))
    return me["user"]["id"]


def mailed_link(recipient, kind):
    """The last link of `kind` (e.g. verify-email) the server put in the mail outbox for `recipient`."""
    # psql reads the query from stdin, where :'recipient' is bound as a quoted literal.
    result = subprocess.run(
        ["psql", os.environ["ACCORD_TEST_DATABASE_URL"], "-XAtq", "-v", "ON_ERROR_STOP=1", "-v", f"recipient={recipient}"],
        input="SELECT body FROM mail_outbox WHERE recipient = :'recipient' ORDER BY id DESC LIMIT 1;\n",
        capture_output=True, text=True)
    assert result.returncode == 0, f"psql failed: {result.stderr.strip()}"
    body = result.stdout
    match = re.search(rf"(https?://\S+/#/{kind}/\S+)", body)
    assert match, f"no {kind} link in the last mail to {recipient}: {body!r}"
    return match.group(1)


def call(method, path, token=None, body=None, headers=None):
    """The API without a browser (to set up what the browser then shows)."""
    request = urllib.request.Request(BASE + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    with urllib.request.urlopen(request) as response:
        text = response.read()
        is_json = "json" in (response.headers.get("Content-Type") or "")
        return (json.loads(text) if text and is_json else text), response.headers


def sign_in(page, email, password=PASSWORD):
    page.goto(BASE + "/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def assert_fits(page):
    """Nothing wider than the screen (the phone-sized page scrolls only down)."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide on a {width[1]} px screen"


def assert_labelled(page):
    """Every form control has an accessible name (a label, or aria-label)."""
    unnamed = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter((e) => e.type !== 'hidden' && !(e.labels?.length || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent.trim())))
        .map((e) => e.outerHTML.slice(0, 80))""")
    assert not unnamed, f"controls without a name: {unnamed}"


def messages(page):
    """The texts of the messages on screen, in screen order (confirmed ones only)."""
    return page.locator("[data-testid=messages] li.message:not(.pending) .body").all_inner_texts()


def send(page, text):
    page.get_by_label("Message", exact=True).fill(text)
    page.keyboard.press("Enter")


def wait_for_messages(page, expected, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        if messages(page) == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"messages on screen: {messages(page)}, expected {expected}")


def main():
    os.makedirs(OUT, exist_ok=True)
    chromium = os.environ.get("ACCORD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("error: no chromium; run Deploy/local/install --test")
    run = Browser(OUT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        uva_context = browser.new_context(viewport={"width": 1200, "height": 900})
        # The second institution works on a phone-sized screen.
        unibo_context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        uva = run.page("uva", uva_context)
        unibo = run.page("unibo", unibo_context)
        try:
            scenario(run, uva, unibo, uva_context)
        except BaseException:
            traceback.print_exc()
            print(f"browser-test: failed; screenshots and console logs in {OUT}", file=sys.stderr)
            sys.exit(1)
        finally:
            run.write_logs()
            browser.close()
    errors = [line for lines in run.logs.values() for line in lines if line.startswith(("pageerror", "dialog"))]
    if errors:
        print("browser-test: the pages reported errors:\n" + "\n".join(errors), file=sys.stderr)
        sys.exit(1)
    print(f"browser-test: every step passed ({run.step_number} steps); screenshots in {OUT}")


def scenario(run, uva, unibo, uva_context):
    with run.step("the client is served with a policy that forbids inline scripts"):
        _, headers = call("GET", "/")
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy

    with run.step("both institutions sign in"):
        sign_in(uva, "intl@uva.nl")
        sign_in(unibo, "intl@unibo.it")
        expect(uva.get_by_test_id("who")).to_have_text("International office")
        expect(uva.locator("#who")).to_contain_text("University of Amsterdam")

    with run.step("the directory's facets filter as checkable counts", "uva"):
        results = uva.get_by_test_id("directory-results")
        expect(results.locator("li")).to_have_count(5)
        italy = uva.get_by_role("checkbox", name=re.compile(r"^Italy \(1\)"))
        italy.check()
        expect(results.locator("li")).to_have_count(1)
        expect(results).to_contain_text("Università di Bologna")
        assert "country=IT" in uva.url
        italy.uncheck()
        expect(results.locator("li")).to_have_count(5)
        assert_labelled(uva)

    with run.step("the directory pages with its cursor, each entry once", "uva"):
        uva.goto(BASE + "/#/directory?sort=name&limit=2")
        results = uva.get_by_test_id("directory-results")
        expect(results.locator("li")).to_have_count(2)
        for count in (4, 5):
            uva.get_by_role("button", name="Show more").click()
            expect(results.locator("li")).to_have_count(count)
        expect(uva.get_by_role("button", name="Show more")).to_be_hidden()
        names = results.locator(".result-name").all_inner_texts()
        token = session_token(uva)
        whole, _ = call("GET", "/v1/directory?sort=name&limit=100", token)
        assert names == [display_name(item["names"]) for item in whole["items"]], names
        uva.goto(BASE + "/#/directory")

    with run.step("Amsterdam finds Bologna by a misspelled name", "uva"):
        uva.get_by_label("Search the network").fill("Univrsita Bolgna")
        result = uva.get_by_test_id("directory-results").get_by_role("link", name="Università di Bologna")
        expect(result).to_be_visible()
        result.click()
        expect(uva.get_by_test_id("profile-name")).to_have_text("Università di Bologna")

    with run.step("a message of intent with a missing field is refused beside the field", "uva"):
        for box in uva.locator("input[name=activities]").all():
            box.uncheck()
        uva.get_by_label("Message of intent").fill("We would like to exchange students in law and economics.")
        uva.get_by_role("button", name="Send message of intent").click()
        expect(uva.locator("#activities-error")).to_be_visible()

    with run.step("Amsterdam sends the message of intent", "uva"):
        uva.get_by_label("Student exchange").check()
        uva.get_by_label("Double degree").check()
        uva.get_by_role("button", name="Send message of intent").click()
        expect(uva.get_by_test_id("stage")).to_have_text("Invited")
        partnership_url = uva.url

    with run.step("Bologna accepts", "unibo"):
        unibo.goto(BASE + "/#/partnerships")
        unibo.get_by_test_id("partnerships").get_by_role("link", name="University of Amsterdam").click()
        unibo.get_by_test_id("accept").click()
        expect(unibo.get_by_test_id("stage")).to_have_text("Negotiating")
        assert_fits(unibo)

    with run.step("Amsterdam drafts version 1 and approves it", "uva"):
        uva.goto(partnership_url)
        uva.reload()
        expect(uva.get_by_test_id("stage")).to_have_text("Negotiating")
        uva.get_by_test_id("draft").click()
        expect(uva.get_by_role("heading", name="Version 1")).to_be_visible()
        uva.get_by_test_id("approve").click()
        expect(uva.get_by_text("Approved by: University of Amsterdam")).to_be_visible()

    with run.step("Bologna drafts version 2 and sees what changed", "unibo"):
        unibo.reload()
        expect(unibo.get_by_role("heading", name="Version 1")).to_be_visible()
        unibo.get_by_label(re.compile("Students a year, Università di Bologna")).fill("3")
        unibo.get_by_test_id("draft").click()
        expect(unibo.get_by_role("heading", name="Version 2")).to_be_visible()
        unibo.get_by_role("button", name="Compare").click()
        diff = unibo.get_by_test_id("diff")
        expect(diff).to_contain_text("mobilitiesPerYear")
        expect(diff.locator("td.after")).to_contain_text(["3"])
        assert_fits(unibo)

    with run.step("both approve version 2 and the partnership is active"):
        unibo.get_by_test_id("approve").click()
        expect(unibo.get_by_text("Approved by: Università di Bologna")).to_be_visible()
        uva.reload()
        expect(uva.get_by_role("heading", name="Version 2")).to_be_visible()
        uva.get_by_test_id("approve").click()
        expect(uva.get_by_test_id("stage")).to_have_text("Active")
        expect(uva.get_by_test_id("kpis")).to_contain_text("Outgoing students")

    with run.step("Amsterdam reports an actual below its KPI's target", "uva"):
        uva.get_by_label("Period").fill("2027/2028")
        uva.get_by_label("Outgoing students (actual)").fill("2")
        uva.get_by_role("button", name="Report").click()
        row = uva.get_by_test_id("kpis").locator("tr.below")
        expect(row).to_contain_text("University of Amsterdam")
        expect(row).to_contain_text("Below target")

    with run.step("Bologna sees the agreement in effect", "unibo"):
        unibo.reload()
        expect(unibo.get_by_test_id("stage")).to_have_text("Active")
        expect(unibo.get_by_role("heading", name="Version 2 (in effect)")).to_be_visible()

    with run.step("both open the partnership's room"):
        uva.get_by_test_id("open-room").click()
        unibo.get_by_test_id("open-room").click()
        for page in (uva, unibo):
            expect(page.get_by_test_id("connection")).to_have_text("Live")

    with run.step("typing and presence reach the other side"):
        expect(uva.locator(".presence")).to_contain_text("Università di Bologna")
        unibo.get_by_label("Message", exact=True).press_sequentially("Ty")
        expect(uva.locator(".typing")).to_contain_text("is typing")
        unibo.get_by_label("Message", exact=True).fill("")
        assert_labelled(unibo)

    expected = []
    with run.step("messages go both ways live"):
        send(uva, "Hello from Amsterdam")
        expected.append("Hello from Amsterdam")
        wait_for_messages(unibo, expected)
        send(unibo, "Ciao from Bologna")
        expected.append("Ciao from Bologna")
        for page in (uva, unibo):
            wait_for_messages(page, expected)

    with run.step("Amsterdam drops off the network while both keep writing"):
        uva_context.set_offline(True)
        expect(uva.get_by_test_id("connection")).not_to_have_text("Live")
        for text in ("Are you there?", "We sent the draft to the rector."):
            send(unibo, text)
            expected.append(text)
        wait_for_messages(unibo, expected)
        # Bologna edits a message Amsterdam already has while Amsterdam is away: the replay
        # carries only new messages, so the client reads the edit itself.
        token = session_token(unibo)
        room_id = unibo.url.rsplit("/", 1)[1]
        history, _ = call("GET", f"/v1/rooms/{room_id}/messages", token)
        seq = next(m["seq"] for m in history["items"] if m["body"] == "Ciao from Bologna")
        call("PATCH", f"/v1/rooms/{room_id}/messages/{seq}", token, body={"body": "Ciao from Bologna!"})
        expected[expected.index("Ciao from Bologna")] = "Ciao from Bologna!"
        wait_for_messages(unibo, expected)
        send(uva, "Written while offline")
        expect(uva.locator("li.pending")).to_have_count(1)

    with run.step("Amsterdam comes back: everything exactly once, in order, on both screens"):
        uva_context.set_offline(False)
        expect(uva.get_by_test_id("connection")).to_have_text("Live")
        expected.append("Written while offline")
        for page in (uva, unibo):
            wait_for_messages(page, expected)
        expect(uva.locator("li.pending")).to_have_count(0)
        send(unibo, "Welcome back")
        expected.append("Welcome back")
        wait_for_messages(uva, expected)
        send(uva, "Thanks!")
        expected.append("Thanks!")
        for page in (uva, unibo):
            wait_for_messages(page, expected)
        # A reload resumes from the history: still once each, in order.
        uva.reload()
        expect(uva.get_by_test_id("connection")).to_have_text("Live")
        wait_for_messages(uva, expected)

    with run.step("the room list shows unread counts", "unibo"):
        send(uva, "One more thing")
        expected.append("One more thing")
        wait_for_messages(uva, expected)
        unibo.goto(BASE + "/#/partnerships")
        unibo.goto(BASE + "/#/rooms")
        expect(unibo.get_by_test_id("rooms").locator(".unread")).to_have_text(re.compile("^[1-9][0-9]* unread$"))

    with run.step("a long history loads as one scrolls up", "uva"):
        grant, _ = call("POST", "/v1/sessions", body={"email": "staff@uva.nl", "password": PASSWORD})
        room, _ = call("POST", "/v1/rooms", grant["token"], body={"title": "Course catalogue 2027"})
        call("POST", f"/v1/rooms/{room['id']}/members", grant["token"], body={"userId": me_id(uva)})
        history = [f"Catalogue note {n}" for n in range(1, 71)]
        for n, text in enumerate(history):
            call("POST", f"/v1/rooms/{room['id']}/messages", grant["token"], body={"clientId": f"history-{n}", "body": text})
        uva.goto(BASE + f"/#/rooms/{room['id']}")
        expect(uva.get_by_test_id("connection")).to_have_text("Live")
        wait_for_messages(uva, history[-50:])
        uva.locator(".scroller").evaluate("(e) => { e.scrollTop = 0; }")
        wait_for_messages(uva, history)

    with run.step("a name holding markup is shown as text and runs nothing", "unibo"):
        grant, _ = call("POST", "/v1/sessions", body={"email": "intl@uva.nl", "password": PASSWORD})
        me, _ = call("GET", "/v1/me", grant["token"])
        institution = me["institution"]
        _, headers = call("GET", f"/v1/institutions/{institution['id']}", grant["token"])
        call("PATCH", f"/v1/institutions/{institution['id']}", grant["token"],
             body={"names": [{"lang": "en", "value": XSS_NAME}]}, headers={"If-Match": headers["ETag"]})
        unibo.goto(BASE + f"/#/institutions/{institution['id']}")
        expect(unibo.get_by_test_id("profile-name")).to_have_text(XSS_NAME)
        unibo.goto(BASE + "/#/directory")
        unibo.get_by_label("Search the network").fill("Amsterdam")
        expect(unibo.get_by_test_id("directory-results")).to_contain_text("<script>")
        assert unibo.evaluate("() => window.__pwned") is None, "a script from a name ran"
        assert unibo.locator("[data-testid=directory-results] script, [data-testid=directory-results] img").count() == 0

    visitor = run.page("visitor", uva.context.browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True))
    with run.step("a new institution registers and confirms its address by the mailed link", "visitor"):
        visitor.goto(BASE + "/")
        visitor.get_by_role("link", name="Register your institution").click()
        visitor.get_by_label("Official name").fill("Universidade de Lisboa")
        visitor.get_by_label(re.compile("^Language of the name")).fill("pt")
        visitor.get_by_label(re.compile("^Internet domain")).fill("ulisboa.pt")
        visitor.get_by_label(re.compile("^Country")).fill("XX")
        visitor.get_by_label("City").fill("Lisboa")
        visitor.get_by_label("Your name").fill("Rita Alves")
        visitor.get_by_label(re.compile("^E-mail at")).fill("intl@ulisboa.pt")
        visitor.get_by_label("Password").fill("Lisboa-Partners-2027")
        visitor.get_by_role("button", name="Register").click()
        country_field = visitor.locator(".field").filter(has=visitor.get_by_label(re.compile("^Country")))
        expect(country_field.locator(".error")).to_contain_text("ISO 3166")
        visitor.get_by_label(re.compile("^Country")).fill("PT")
        visitor.get_by_role("button", name="Register").click()
        expect(visitor.get_by_role("heading", name="Registration received")).to_be_visible()
        assert_fits(visitor)
        visitor.goto(mailed_link("intl@ulisboa.pt", "verify-email"))
        expect(visitor.get_by_role("heading", name="Address confirmed")).to_be_visible()

    with run.step("a forgotten password is replaced by the mailed link", "visitor"):
        # The used token left the address; its page's link leads to signing in.
        assert "verify-email" not in visitor.url, visitor.url
        visitor.get_by_role("link", name="Sign in").click()
        visitor.get_by_role("link", name="Forgot your password?").click()
        expect(visitor.get_by_role("heading", name="Forgotten password")).to_be_visible()
        visitor.get_by_label("E-mail").fill("staff@uchile.cl")
        visitor.get_by_role("button", name="Send me a link").click()
        expect(visitor.get_by_role("heading", name="Check your mail")).to_be_visible()
        visitor.goto(mailed_link("staff@uchile.cl", "reset-password"))
        visitor.get_by_label("New password", exact=True).fill("password1234")
        visitor.get_by_role("button", name="Set the password").click()
        expect(visitor.locator(".error").filter(has_text="common")).to_be_visible()
        visitor.get_by_label("New password", exact=True).fill("Santiago-Andes-2027")
        visitor.get_by_role("button", name="Set the password").click()
        expect(visitor.get_by_role("heading", name="Password changed")).to_be_visible()
        visitor.get_by_role("link", name="Sign in").click()
        expect(visitor.get_by_role("heading", name="Sign in to Accord")).to_be_visible()
        visitor.get_by_label("E-mail").fill("staff@uchile.cl")
        visitor.get_by_label("Password").fill("Santiago-Andes-2027")
        visitor.get_by_role("button", name="Sign in").click()
        expect(visitor.locator("#who")).to_contain_text("Universidad de Chile")
        visitor.get_by_role("button", name="Sign out").click()

    with run.step("the network administrator sees the statistics and the pending registration"):
        admin_context = uva.context.browser.new_context(viewport={"width": 1200, "height": 900})
        admin = run.page("admin", admin_context)
        sign_in(admin, "admin@accord.demo")
        expect(admin.get_by_test_id("stats")).to_contain_text("Statistics")
        pending = admin.get_by_test_id("admin-institutions")
        expect(pending).to_contain_text("Hanyang University")
        hanyang = pending.locator("li").filter(has_text="Hanyang University")
        hanyang.get_by_role("button", name="Reject").click()
        expect(hanyang.locator(".error").filter(has_text=re.compile("."))).not_to_have_count(0)
        hanyang.get_by_role("button", name="Approve").click()
        expect(pending.locator("li").filter(has_text="Hanyang University")).to_have_count(0)
        pending.locator("li").filter(has_text="Universidade de Lisboa").get_by_role("button", name="Approve").click()
        expect(admin.get_by_text("No pending institution.")).to_be_visible()

    with run.step("the new institution's admin signs in and invites a colleague, who joins by the mailed link", "visitor"):
        sign_in(visitor, "intl@ulisboa.pt", "Lisboa-Partners-2027")
        visitor.get_by_role("link", name="Members").click()
        expect(visitor.get_by_role("heading", name="Members")).to_be_visible()
        visitor.get_by_label("E-mail").fill("prof@ulisboa.pt")
        visitor.get_by_label("Role").select_option("faculty")
        visitor.get_by_role("button", name="Send the invitation").click()
        expect(visitor.get_by_test_id("invitations")).to_contain_text("prof@ulisboa.pt")
        visitor.get_by_role("button", name="Sign out").click()
        visitor.goto(mailed_link("prof@ulisboa.pt", "invitations"))
        visitor.get_by_label("Your name").fill("Prof. João Costa")
        visitor.get_by_label("Choose a password").fill("Costa-Research-2027")
        visitor.get_by_role("button", name="Join").click()
        expect(visitor.get_by_test_id("who")).to_have_text("Prof. João Costa")
        expect(visitor.locator("#who")).to_contain_text("Universidade de Lisboa")

    with run.step("the network administrator suspends a member and reinstates it", "admin"):
        admin.get_by_role("link", name="Active").click()
        nairobi = admin.get_by_test_id("admin-institutions").locator("li").filter(has_text="University of Nairobi")
        nairobi.get_by_label(re.compile("^Reason")).fill("Membership fee unpaid.")
        nairobi.get_by_role("button", name="Suspend").click()
        expect(nairobi).to_have_count(0)
        admin.get_by_role("link", name="Suspended").click()
        suspended = admin.get_by_test_id("admin-institutions").locator("li").filter(has_text="University of Nairobi")
        suspended.get_by_role("button", name="Reinstate").click()
        expect(admin.get_by_text("No suspended institution.")).to_be_visible()
        assert_labelled(admin)

    with run.step("signing out forgets the session", "uva"):
        uva.get_by_role("button", name="Sign out").click()
        expect(uva.get_by_role("button", name="Sign in")).to_be_visible()
        assert uva.evaluate("() => sessionStorage.length") == 0

    with run.step("signing in again works, and the skip link keeps the page", "uva"):
        uva.get_by_label("E-mail").fill("intl@uva.nl")
        uva.get_by_label("Password").fill(PASSWORD)
        uva.get_by_role("button", name="Sign in").click()
        expect(uva.get_by_role("heading", name="Directory")).to_be_visible()
        uva.get_by_role("link", name="Skip to content").focus()
        uva.keyboard.press("Enter")
        expect(uva.locator("#main")).to_be_focused()
        expect(uva.get_by_role("heading", name="Directory")).to_be_visible()


if __name__ == "__main__":
    main()
