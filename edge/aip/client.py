"""What the v2 and v3 clients share: the SDK's constructor and connection settings."""
from __future__ import annotations

from edge import __version__
from edge.aip.runtime import get_runtime
from edge.analysis.capabilities import capabilities
from edge.config import Config


class AipClient:
    """Baidu's AipBase, offline: the timeouts and proxies are kept but mean nothing here."""

    def __init__(self, appId, apiKey, secretKey, *, config: Config | None = None):
        self.appId, self.apiKey, self.secretKey = str(appId), apiKey, secretKey
        self._rt = get_runtime(config)
        self._api = (config or self._rt.config).api

    def getVersion(self):
        return __version__

    def capabilities(self) -> dict:
        """edge's own addition (not in Baidu's SDK): the detect fields measured, and the
        ones answered null because edge cannot measure them (docs/fields.md)."""
        return capabilities()

    def setConnectionTimeoutInMillis(self, ms):
        self._connection_timeout = ms

    def setSocketTimeoutInMillis(self, ms):
        self._socket_timeout = ms

    def setProxies(self, proxies):
        self._proxies = proxies

    @property
    def _lib(self):
        return self._rt.writable_library(self.appId)
