# lb4 container image (SPEC §13). Build: `docker build -t lb4 .` (or podman).
# Run:  docker run -p 8080:8080 -p 9870:9870 -v "$PWD/lb4.yaml:/etc/lb4/lb4.yaml:ro" \
#         -v lb4-state:/var/lib/lb4 -e LB4_ADMIN_TOKEN=... lb4
# or pass the config as text: -e LB4_CONFIG="$(cat lb4.yaml)". See the README, "Container".
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript with the dev dependencies ---
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own `prepare` builds from src/, which is not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, the compiled CLI, a non-root user ---
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    LB4_LOG_FORMAT=json
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin ./bin
# lb4 runs as its own unprivileged user; /var/lib/lb4 is its working directory and the place
# for state_dir (a relative state_dir in LB4_CONFIG lands in /var/lib/lb4/lb4-state).
RUN groupadd --system --gid 10001 lb4 \
 && useradd --system --uid 10001 --gid lb4 --home-dir /var/lib/lb4 --shell /usr/sbin/nologin lb4 \
 && mkdir -p /etc/lb4 /var/lib/lb4 \
 && chown lb4:lb4 /var/lib/lb4 \
 && ln -s /app/bin/lb4 /usr/local/bin/lb4
USER 10001:10001
WORKDIR /var/lib/lb4
VOLUME ["/var/lib/lb4"]
EXPOSE 9870
# lb4 is PID 1 and installs its own SIGTERM/SIGINT/SIGHUP handlers: SIGTERM drains for
# --grace seconds (default 10) and exits 0, so give `docker stop` more than that (-t 15).
STOPSIGNAL SIGTERM
# The slim image has no curl: node itself asks /healthz (no token needed). Set
# LB4_HEALTHCHECK_URL when admin.listen is not on port 9870.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const u=process.env.LB4_HEALTHCHECK_URL||'http://127.0.0.1:9870/healthz';require('http').get(u,{timeout:3000},r=>process.exit(r.statusCode===200?0:1)).on('timeout',function(){this.destroy(new Error('timeout'))}).on('error',()=>process.exit(1))"]
ENTRYPOINT ["lb4", "start"]
