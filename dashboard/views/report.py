"""Report page: export the audit as JSON and CSV (aggregates only)."""

from __future__ import annotations

import io
import json
import zipfile

import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption
from engine.audit.export import audit_to_dict, neutralise_formula

st.title("Report")
data = state.current_data()
dataset_caption(data)
found = state.last_audit()
if found is None:
    st.info("Run the audit on the Bias audit page first; the report exports its results.")
    st.stop()
result, data = found
model = state.trained_model(data)
payload = audit_to_dict(result, data, model)
report_json = json.dumps(payload, indent=2, ensure_ascii=False, default=str).encode("utf-8")
metrics_csv = result.metrics.map(neutralise_formula).to_csv(index=False).encode("utf-8")
st.markdown(
    f"The report holds aggregates only: {len(result.metrics)} metric rows, "
    f"{int(result.metrics['flag'].sum())} flagged, with definitions, configuration and "
    "provenance (dataset fingerprint, model settings, package versions)."
)
c1, c2, c3 = st.columns(3)
c1.download_button("report.json", report_json, "report.json", "application/json",
                   key="download_json")  # fmt: skip
c2.download_button("metrics.csv", metrics_csv, "metrics.csv", "text/csv", key="download_csv")
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("report.json", report_json)
    archive.writestr("metrics.csv", metrics_csv)
c3.download_button("both (zip)", buffer.getvalue(), "audit.zip", "application/zip",
                   key="download_zip")  # fmt: skip
st.caption("HTML and PDF renderings of the report are not built yet (see the open issues); "
           "JSON and CSV carry every number.")  # fmt: skip
with st.expander("Preview report.json"):
    st.json(payload["provenance"])
