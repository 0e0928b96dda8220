"""Drives Debian's headless Chromium through one step of a patient's visit,
for the end-to-end page tests. Playwright talks to the system browser
(executable_path); it never downloads one.

    browser.py submit-form URL EMAIL FIRST_NAME TOPIC [TOPIC ...]
    browser.py press URL BUTTON_TEXT
    browser.py preferences URL TOPIC=on|off [TOPIC=on|off ...]
    browser.py example-form URL SHOTS_DIR EMAIL full|empty

`example-form` fills the shipped example form as a patient would (every
field, through its own control: the date picker's input, the selects, the
topic checkboxes by their labels) or with every optional field left empty,
takes screenshots at 1280 and 375 px wide into SHOTS_DIR, and submits.

Each prints one JSON object: the final URL, the HTTP status of the last
navigation and the page's heading and text.
"""

import json
import os
import sys

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
            status = step(page)
            result = {
                "url": page.url,
                "status": status,
                "heading": page.inner_text("h1") if page.query_selector("h1") else "",
                "text": page.inner_text("body"),
                # Wider than the viewport means the page scrolls sideways.
                "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
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


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    {
        "submit-form": submit_form,
        "press": press,
        "preferences": preferences,
        "example-form": example_form,
        "screenshot": screenshot,
    }[command](*rest)
