"""HTML templates of the pages onOffice shows in its iframes (package data: templates/*.html)."""
