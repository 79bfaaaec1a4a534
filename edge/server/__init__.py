"""The Baidu-compatible HTTP service (`edge serve`); see docs/server.md."""
