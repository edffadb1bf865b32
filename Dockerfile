# ringfence gateway image. Node 24 runs the TypeScript sources directly (type stripping): there is no build step,
# so the image is the sources plus the production dependencies.
#
# Base: node:24.21-slim. Node 24 is what the sources need (type stripping, engines >=24), and 24.21 is the Node the
# test suite runs on (the `node` devDependency, 24.21.0). The major.minor tag takes patch releases (security fixes)
# on a rebuild without changing the minor the tests pinned; no digest, so a rebuild does pick them up: pin a digest
# where your registry promotes images if you need bit-for-bit rebuilds. Debian slim, not Alpine: glibc, the
# platform Node's release binaries (and the pinned devDependency the tests use) are built for.
#
# Runtime layout: the config and the policy bundles are mounted at /etc/ringfence (read-only is fine):
#   /etc/ringfence/ringfence.yaml   the gateway config (deploy/ringfence.yaml in this repository)
#   /etc/ringfence/bundle.yaml      the production bundle it names (`policy.bundle: bundle.yaml`, relative to it)
# /app/config and /app/policy-bundles hold the repository's defaults and example bundles, for a quick try without
# a mount: `docker run -p 8080:8080 IMAGE serve --config config/default.yaml`.
#
# No container engine runs on the development machines: deploy/verify-image-steps.sh runs these same steps by hand
# (production install, start from the copied files under Node 24, /healthz, /readyz, a completion).

FROM node:24.21-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, exactly as locked. --ignore-scripts: no production dependency needs an install
# script, and the `node` devDependency (which downloads a Node) is omitted anyway: the image is Node 24 already.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24.21-slim AS runtime
ENV NODE_ENV=production \
    RINGFENCE_HOST=0.0.0.0 \
    RINGFENCE_ADMIN_HOST=0.0.0.0
WORKDIR /app
# Files stay owned by root: the gateway reads them and never writes there (read-only root filesystems work).
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY config ./config
COPY policy-bundles ./policy-bundles
# The base image's `node` user, by number so that Kubernetes' runAsNonRoot can check it is not root.
USER 1000:1000
# 8080: the data plane (SDK traffic, /healthz, /readyz). 8081: the admin listener (/metrics, /admin/v1): keep it
# reachable from Prometheus and operators only.
EXPOSE 8080 8081
# slim has no curl: Node's own fetch. PORT is the same override the gateway reads for the data listener.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# bin/ringfence.js re-executes under node_modules/node only when the running Node is older than 24; here it is 24,
# so it imports the CLI directly (the devDependency is, rightly, not in the image).
ENTRYPOINT ["node", "bin/ringfence.js"]
CMD ["serve", "--config", "/etc/ringfence/ringfence.yaml"]
