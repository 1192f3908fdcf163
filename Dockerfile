# healthd as a container (compose sidecar). Python packages come from a wheelhouse the
# host builds (`pip wheel -w wheelhouse .`), so the build needs no index of its own:
#   pip wheel -w wheelhouse . && docker build -t healthd .
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY wheelhouse /wheelhouse
RUN python3 -m venv /opt/healthd \
 && /opt/healthd/bin/pip install --no-index --find-links /wheelhouse healthd \
 && rm -rf /wheelhouse
ENV PATH=/opt/healthd/bin:$PATH \
    HEALTHD_LISTEN=0.0.0.0:10985 \
    HEALTHD_STATE=/var/lib/healthd/state.db
VOLUME /var/lib/healthd
EXPOSE 10985
HEALTHCHECK --interval=30s --timeout=5s CMD python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:10985/healthz', timeout=4)" || exit 1
ENTRYPOINT ["healthd"]
CMD ["run"]
