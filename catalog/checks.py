"""Start-up check: every catalog file validates. A broken file is a warning naming the file and
the field, not an error, so it never stops Flock (or the other entries) from loading."""

from __future__ import annotations

from django.core.checks import CheckMessage, Warning


def catalog_entries_check(app_configs=None, **kwargs) -> list[CheckMessage]:
    from catalog import loader

    catalog = loader.load_configured()
    messages: list[CheckMessage] = [
        Warning(f"catalog entry skipped: {problem}", obj=str(problem.file),
                hint="fix the field; `manage.py model search` lists what loaded",
                id="catalog.W001")
        for problem in catalog.problems]
    if not catalog.entries:
        messages.append(Warning("the model catalog is empty", id="catalog.W002",
                                hint=f"searched: {', '.join(str(d) for d in catalog.dirs)}"))
    return messages
