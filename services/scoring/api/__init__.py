"""Routes of the scoring service: parse, call a handler or a report, return."""

from services.scoring.api import comments, exports, metrics, segments, settings, targets, themes

routers = [
    metrics.router,
    segments.router,
    themes.router,
    comments.router,
    targets.router,
    settings.router,
    exports.router,
]
