"""Drives the roster console in a real headless Chromium (Debian's chromium and chromedriver)
with Selenium: sign in, find a member by email, see the removal's receipt, remove them, see
them gone and the audit event; a member whose name is markup is shown as text. Prints one line
of JSON per step for the Rust test (tests/api/console.rs) to judge; exits non-zero on the first
failure. With a directory as the 5th argument, saves screenshots of the main pages there.

Usage: check.py BASE_URL TOKEN ORG_ID EMAIL [SCREENSHOT_DIR]
"""

import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def step(name, **facts):
    print(json.dumps({"step": name, **facts}), flush=True)


def main() -> None:
    base, token, org, email = sys.argv[1:5]
    shots = sys.argv[5] if len(sys.argv) > 5 else None
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,850"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 20)

    def act(locator, action):
        # The console renders a page again when its data arrives, which replaces an element
        # found just before (a stale reference): find it again until the action takes.
        def done(d):
            try:
                element = EC.element_to_be_clickable(locator)(d)
                if not element:
                    return False
                action(element)
                return True
            except StaleElementReferenceException:
                return False

        wait.until(done)

    def click(locator):
        act(locator, lambda e: e.click())

    def type_into(locator, text):
        act(locator, lambda e: e.send_keys(text))

    def shot(name):
        if shots:
            driver.save_screenshot(os.path.join(shots, f"{name}.png"))

    try:
        driver.get(f"{base}/console")
        field = wait.until(EC.presence_of_element_located((By.ID, "token")))
        shot("sign-in")
        field.send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f"a[href='#/orgs/{org}/members']"))).click()
        step("signed_in", token_in_url=token in driver.current_url)

        wait.until(EC.presence_of_element_located((By.ID, "search")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "tbody tr")))
        shot("members")
        # A member named as markup is on the page as text, and nothing ran.
        page_text = driver.find_element(By.TAG_NAME, "main").text
        try:
            driver.switch_to.alert
            alerted = True
        except NoAlertPresentException:
            alerted = False
        step("escaped", shown_as_text="<script>alert(1)</script>" in page_text, alerted=alerted)

        type_into((By.ID, "search"), email)
        click((By.CSS_SELECTOR, "form.filters button[type=submit]"))
        wait.until(EC.url_contains("q="))
        click((By.LINK_TEXT, email))
        click((By.ID, "remove-member"))
        receipt = wait.until(EC.visibility_of_element_located((By.ID, "receipt")))
        step("receipt", text=receipt.text)
        shot("receipt")
        click((By.ID, "confirm-removal"))
        type_into((By.ID, "search"), email)
        click((By.CSS_SELECTOR, "form.filters button[type=submit]"))
        wait.until(EC.url_contains("q="))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table")))
        rows = driver.find_elements(By.LINK_TEXT, email)
        step("removed", still_listed=len(rows))

        driver.get(f"{base}/console#/orgs/{org}/audit")
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "membership.removed"))
        shot("audit")
        step("audited")
    except Exception:
        # What the page showed when a step failed, for the test's message.
        print(f"at {driver.current_url}:\n{driver.find_element(By.TAG_NAME, 'body').text}", file=sys.stderr)
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
