import _avcmr_src  # noqa: F401  (puts this checkout's src/ on sys.path before avcmr is imported)

from avcmr.logs import start_job

start_job(snakemake)

from avcmr.features.weights import fetch_official_file

for entry in snakemake.params.files.values():
    fetch_official_file(entry["url"], entry["path"], entry["what"], entry.get("sha256"), entry.get("md5"))
