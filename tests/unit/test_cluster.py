"""`parlour cluster`'s NGINX files, and which names a namespace's retirement touches."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from parlour.cluster import NGINX_CONF, nginx_main_conf, upstreams_conf, write_nginx_files
from parlour.common.retire import owned


def test_upstreams_name_one_block_per_service_and_balance_gateways_by_connections() -> None:
    conf = upstreams_conf({"auth": [8101], "gateway": [8301, 8302]})
    assert "upstream parlour_auth { server 127.0.0.1:8101; }" in conf
    assert "upstream parlour_gateway { least_conn; server 127.0.0.1:8301; server 127.0.0.1:8302; }" in conf


def test_the_generated_main_configuration_keeps_every_nginx_file_in_the_run_folder(tmp_path: Path) -> None:
    conf = nginx_main_conf(tmp_path, NGINX_CONF)
    assert f"include {NGINX_CONF};" in conf
    paths = [word.rstrip(";") for word in conf.split() if word.startswith("/")]
    assert all(path == str(NGINX_CONF) or path.startswith(str(tmp_path)) for path in paths), paths


def test_nginx_accepts_the_shipped_site_file_with_the_generated_includes(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        if os.environ.get("PARLOUR_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("nginx is missing (PARLOUR_TEST_REQUIRE_SERVICES=1)")
        pytest.skip("nginx is missing: apt-get install -y nginx")
    ports = {name: [9] for name in ("auth", "messaging", "gateway", "web", "presence", "notifications")}
    main = write_nginx_files(tmp_path, ports, 9, NGINX_CONF)
    error_log = tmp_path / "logs" / "error.log"
    command = [nginx, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(error_log)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr


def test_retiring_a_namespace_touches_only_names_under_its_prefix() -> None:
    names = ["parlour.cmd.0", "parlour.events", "parlour2.cmd.0", "parlourx", "other.parlour.cmd.0", "parlour"]
    assert owned(names, "parlour") == ["parlour.cmd.0", "parlour.events"]
