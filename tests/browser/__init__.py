"""The browser tier: the real Control UI in Chromium (Playwright driving Debian's
``/usr/bin/chromium``) against our gateway on a loopback port. Skips, naming why, without
playwright, the browser, or the reference package's Control UI build."""
