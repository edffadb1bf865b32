# ringfence gateway image. Node 24 runs the TypeScript sources directly (type stripping): no build step.
# Note: no container engine runs on the development machines; these steps mirror what `.ci/run` does by hand.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the pinned `node` devDependency is not needed: the image is Node 24 already.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY config ./config
COPY policy-bundles ./policy-bundles
USER node
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/ringfence.js"]
CMD ["serve", "--config", "config/default.yaml"]
