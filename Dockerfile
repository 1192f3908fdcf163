# healthd as a container image.
#
# Python packages come from a wheelhouse the host builds, so nothing is downloaded inside
# the build (it runs fine with `--network none`):
#   pip wheel -w wheelhouse . && docker build -t healthd .
# The wheels must match the base image's Python (python:3.11-slim and Debian bookworm
# both have 3.11: build the wheelhouse with a 3.11 pip). Any Debian-like base with
# python3 and python3-venv works: `--build-arg BASE=my-registry/debian-python:bookworm`.
#
# Runs as the unprivileged user `healthd` (uid 10985). The Docker socket is
# root-equivalent: whoever can write to it can start a privileged container. Give the
# container the socket's group rather than root:
#   docker run -d --name healthd --network host \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /sys/fs/cgroup:/sys/fs/cgroup:ro -v healthd-state:/var/lib/healthd healthd
# Where the socket belongs to root's group only, --group-add 0 still avoids uid 0; only
# if your socket is mode 0600 does healthd need `--user 0`.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
COPY wheelhouse /wheelhouse
# The scientific stack's own test suites are a third of its size and never imported; the
# last line proves the forecaster's refit (statsmodels) still works without them.
RUN python3 -m venv /opt/healthd \
 && /opt/healthd/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \
        --find-links /wheelhouse healthd \
 && /opt/healthd/bin/pip uninstall -y -q pip setuptools \
 && find /opt/healthd -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
 && /opt/healthd/bin/python -c "from healthd.foresight.refit import fit; \
        fit([i + i % 7 * 0.5 for i in range(60)], 5.0, season_len=7)"

FROM ${BASE}
RUN groupadd --system --gid 10985 healthd \
 && useradd --system --uid 10985 --gid healthd --no-create-home \
        --home-dir /var/lib/healthd --shell /usr/sbin/nologin healthd \
 && mkdir -p /var/lib/healthd && chown healthd:healthd /var/lib/healthd \
 && chmod 0750 /var/lib/healthd
COPY --from=build /opt/healthd /opt/healthd
ENV PATH=/opt/healthd/bin:$PATH \
    HEALTHD_STATE=/var/lib/healthd/state.db \
    PYTHONUNBUFFERED=1
# The endpoint stays on 127.0.0.1:10985 unless HEALTHD_LISTEN says otherwise; beyond
# loopback everything but /healthz and /metrics needs daemon.token (see README).
VOLUME /var/lib/healthd
USER healthd
EXPOSE 10985
# /healthz is 503 when the main loop stalls or the engine is gone; `healthd healthz` asks
# the configured listen address (https when TLS is on).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["healthd", "healthz"]
ENTRYPOINT ["healthd"]
CMD ["run"]
