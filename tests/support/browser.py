"""Drives Debian's headless Chromium through one step of a patient's visit,
for the end-to-end page tests. Playwright talks to the system browser
(executable_path); it never downloads one.

    browser.py submit-form URL EMAIL FIRST_NAME TOPIC [TOPIC ...]
    browser.py press URL BUTTON_TEXT
    browser.py preferences URL TOPIC=on|off [TOPIC=on|off ...]
    browser.py example-form URL SHOTS_DIR EMAIL full|empty
    browser.py secure-message URL SHOTS_DIR OUTBOX_DIR DATE_OF_BIRTH read|lock
    browser.py page-check URL SHOTS_DIR NAME

`example-form` fills the shipped example form as a patient would (every
field, through its own control: the date picker's input, the selects, the
topic checkboxes by their labels) or with every optional field left empty,
takes screenshots at 1280 and 375 px wide into SHOTS_DIR, and submits.

`secure-message` opens a secure message's page, takes screenshots at 1280
and 375 px, asks for a code by its button and reads the code from the newest
code email in OUTBOX_DIR (the relay's files), then either (read) enters a
wrong date of birth once and the right code and date, or (lock) a wrong code
five times, then opens the link again. axe-core (CAREPOST_AXE) checks the page
before and after; its violations are printed.

`page-check` opens a page (a report written by the CLI) at 1280 and 375 px
wide, takes a full-page screenshot at each into SHOTS_DIR as NAME-WIDTH.png,
and reports axe-core's violations and the page's width at each.

Each prints one JSON object: the final URL, the HTTP status of the last
navigation and the page's heading and text.
"""

import email
import email.policy
import json
import os
import re
import sys
import time

from playwright.sync_api import sync_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def run(step):
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CAREPOST_CHROMIUM", "/usr/bin/chromium"), args=ARGS
        )
        page = browser.new_page()
        try:
            outcome = step(page)
            status, extra = outcome if isinstance(outcome, tuple) else (outcome, {})
            result = {
                "url": page.url,
                "status": status,
                "heading": page.inner_text("h1") if page.query_selector("h1") else "",
                "text": page.inner_text("body"),
                # Wider than the viewport means the page scrolls sideways.
                "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
                **extra,
            }
        finally:
            browser.close()
    print(json.dumps(result))


def submit_form(url, email, first_name, *topics):
    def step(page):
        page.goto(url)
        page.get_by_label("Email address").fill(email)
        page.get_by_label("First name (optional)").fill(first_name)
        for topic in topics:
            page.check(f"input[name=categories][value='{topic}']")
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Subscribe").click()
        return navigation.value.status if navigation.value else None

    run(step)


def press(url, button):
    def step(page):
        page.goto(url)
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name=button).click()
        return navigation.value.status if navigation.value else None

    run(step)


def preferences(url, *choices):
    def step(page):
        page.goto(url)
        for choice in choices:
            topic, state = choice.split("=")
            box = page.locator(f"input[name=categories][value='{topic}']")
            box.check() if state == "on" else box.uncheck()
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Save my choices").click()
        return navigation.value.status if navigation.value else None

    run(step)


def example_form(url, shots, email, mode):
    def step(page):
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(url)
            page.screenshot(path=os.path.join(shots, f"form-{mode}-{width}.png"), full_page=True)
        page.get_by_label("Email address").fill(email)
        if mode == "full":
            page.get_by_label("First name (optional)").fill("Robin")
            page.get_by_label("Last name (optional)").fill("Okafor")
            page.get_by_label("Date of birth (optional)").fill("1984-03-09")
            page.get_by_label("Sex (optional)").select_option(label="Female")
            page.get_by_label("ZIP code (optional)").fill("02139")
            page.get_by_label("Language (optional)").select_option(label="Español")
            page.get_by_label("Health conditions you want news about (optional)").fill("Diabetes, asthma")
            page.get_by_label("Wellness tips").check()
            page.get_by_label("Condition updates").check()
        else:
            page.get_by_label("Wellness tips").check()
        page.screenshot(path=os.path.join(shots, f"form-{mode}-filled-375.png"), full_page=True)
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Subscribe").click()
        page.screenshot(path=os.path.join(shots, f"thanks-{mode}-375.png"), full_page=True)
        return navigation.value.status if navigation.value else None

    run(step)


def screenshot(url, path, width):
    def step(page):
        page.set_viewport_size({"width": int(width), "height": 900})
        response = page.goto(url)
        page.screenshot(path=path, full_page=True)
        return response.status if response else None

    run(step)


def page_check(url, shots, name):
    def step(page):
        response = page.goto(url)
        extra = {}
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=os.path.join(shots, f"{name}-{width}.png"), full_page=True)
            extra[f"scroll_width_{width}"] = page.evaluate("document.documentElement.scrollWidth")
            extra[f"axe_{width}"] = axe_violations(page)
        return (response.status if response else None), extra

    run(step)


def axe_violations(page):
    """axe-core's violations on the page as it is: rule, impact, how many nodes."""
    with open(os.environ["CAREPOST_AXE"]) as f:
        page.evaluate(f.read())
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"])} for v in found]


def newest_code(outbox, before):
    """The code in a code email that arrived after `before` (file names)."""
    deadline = time.time() + 15
    while time.time() < deadline:
        for name in sorted(set(os.listdir(outbox)) - before):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(outbox, name), "rb") as f:
                message = email.message_from_binary_file(f, policy=email.policy.default)
            if str(message["Subject"]).startswith("Your code"):
                found = re.search(r" is (\d{6})\.", message.get_body(("plain",)).get_content())
                if found:
                    return found.group(1)
        time.sleep(0.1)
    raise SystemExit("no code email arrived")


def submit(page, code, date_of_birth):
    page.get_by_label("Code from the email").fill(code)
    page.get_by_label("Date of birth").fill(date_of_birth)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Show the message").click()
    return navigation.value.status if navigation.value else None


def secure_message(url, shots, outbox, date_of_birth, mode):
    def step(page):
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(url)
            page.screenshot(path=os.path.join(shots, f"secure-{mode}-{width}.png"), full_page=True)
        extra = {"axe_page": axe_violations(page)}
        before = set(os.listdir(outbox))
        with page.expect_navigation():
            page.get_by_role("button", name="Email me a code").click()
        extra["after_code"] = page.inner_text("main")
        code = newest_code(outbox, before)
        if mode == "read":
            extra["wrong_status"] = submit(page, code, "1901-01-01")
            extra["wrong_text"] = page.inner_text("main")
            status = submit(page, code, date_of_birth)
        else:
            for _ in range(5):
                status = submit(page, "000000", date_of_birth)
            extra["locked_text"] = page.inner_text("main")
            # Back to the link, with the right code at hand: the page stays locked.
            response = page.goto(url)
            status = response.status if response else None
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=os.path.join(shots, f"secure-{mode}-final-{width}.png"), full_page=True)
        extra["axe_final"] = axe_violations(page)
        return status, extra

    run(step)


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    {
        "submit-form": submit_form,
        "press": press,
        "preferences": preferences,
        "example-form": example_form,
        "screenshot": screenshot,
        "secure-message": secure_message,
        "page-check": page_check,
    }[command](*rest)
