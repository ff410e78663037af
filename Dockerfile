FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" \
    PORTCULLIS_POLICY__BUNDLE=/app/policies
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY audit audit
COPY inference inference
COPY migrations migrations
COPY policies policies
RUN pip install . && useradd -r portcullis
USER portcullis
EXPOSE 8080
CMD ["portcullis", "serve", "--host", "0.0.0.0"]
