-- What each cluster's agent last reported (`POST /v1/clusters/{name}/report`): the report as
-- the JSON text the agent signed, and when the service received it. One row per cluster,
-- replaced by every report. Never a private key: reports carry serials and fingerprints.

CREATE TABLE cluster_reports (
    cluster     TEXT   NOT NULL PRIMARY KEY REFERENCES clusters (name),
    received_at BIGINT NOT NULL,
    report      TEXT   NOT NULL
);
