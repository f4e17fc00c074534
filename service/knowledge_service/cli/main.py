"""The ``knowledge`` command: serve, ingest, search, eval."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, cast

import httpx
import typer
from tqdm import tqdm

from knowledge_service.core.config import Settings
from knowledge_service.core.errors import KnowledgeError

app = typer.Typer(
    help="Hybrid retrieval side-car: serve it, feed it, query it, measure it.", no_args_is_help=True
)
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Knowledge base name.")]
UrlOpt = Annotated[str | None, typer.Option(help="Service URL (default: the configured HTTP port).")]
KeyOpt = Annotated[
    str | None, typer.Option("--api-key", envvar="KNOWLEDGE_API_KEY", help="Key for a protected service.")
]


def _auth(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _service_url(settings: Settings, url: str | None) -> str | None:
    """The URL of a running service, or None when none answers."""
    url = url or f"http://{settings.http_host}:{settings.http_port}"
    try:
        httpx.get(f"{url}/healthz", timeout=1.0)  # any answer (even 401) means a service runs
        return url
    except httpx.TransportError:
        return None


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


@app.command()
def serve() -> None:
    """Run the service (HTTP and gRPC) with settings from KNOWLEDGE_* variables."""
    from knowledge_service.serve import serve as run

    try:
        asyncio.run(run(Settings()))
    except ValueError as exc:  # a configuration the service refuses to run with
        raise _fail(exc) from None


@app.command()
def models() -> None:
    """Make the ONNX exports the settings call for (KNOWLEDGE_EMBED_BACKEND, and
    KNOWLEDGE_RERANK_BACKEND when a reranker is configured) ahead of serving; print where they are."""
    from knowledge_service.models.export import ExportError
    from knowledge_service.models.registry import Options, load_dense, load_reranker

    s = Settings()
    out: dict[str, Any] = {"models_dirs": [str(d) for d in s.models_dirs]}
    try:
        dense = load_dense(s.embed_model, backend=s.embed_backend, options=Options.of(s))
        out["embed"] = {"model": s.embed_model, "backend": dense.backend, "vectors": dense.vectors}
        if export := getattr(dense, "export", None):
            out["embed"]["export"] = str(export.folder)
        if s.rerank_model:
            reranker = load_reranker(s.rerank_model, backend=s.rerank_backend, options=Options.of(s))
            out["rerank"] = {"model": s.rerank_model, "backend": reranker.backend}
    except (ExportError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(out))


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Files and folders.")],
    namespace: NamespaceOpt,
    url: UrlOpt = None,
    batch: Annotated[int, typer.Option(min=1, max=64)] = 16,
    api_key: KeyOpt = None,
) -> None:
    """Ingest files (text, Markdown, HTML, PDF); via the running service, else the store directly."""
    from knowledge_service.pipelines.parsing.files import iter_files

    settings = Settings()
    files = list(iter_files(paths))
    if not files:
        raise _fail(ValueError("no supported files (.txt, .md, .html, .pdf) under those paths"))
    service = _service_url(settings, url)
    counts: dict[str, int] = {}
    with tqdm(total=len(files), unit="file", desc=f"ingest -> {namespace}") as bar:
        if service:
            for start in range(0, len(files), batch):
                part = files[start : start + batch]
                body = [("files", (doc_id, p.read_bytes())) for p, doc_id in part]
                resp = httpx.post(
                    f"{service}/v1/namespaces/{namespace}/files",
                    files=body,
                    data={"ids": [d for _, d in part]},
                    headers=_auth(api_key),
                    timeout=600,
                )
                if resp.status_code >= 400:
                    raise _fail(RuntimeError(resp.json().get("error", {}).get("message", resp.text)))
                _tally(counts, resp.json()["results"], bar)
        else:
            asyncio.run(_ingest_local(settings, namespace, files, batch, counts, bar))
    typer.echo(json.dumps({"namespace": namespace, "via": "service" if service else "store", **counts}))


def _tally(counts: dict[str, int], results: list[Any], bar: tqdm) -> None:
    for r in results:
        status = r["status"] if isinstance(r, dict) else r.status
        counts[status] = counts.get(status, 0) + 1
        if status == "failed":
            tqdm.write(
                f"failed: {r['id'] if isinstance(r, dict) else r.id}: "
                f"{r['error'] if isinstance(r, dict) else r.error}"
            )
    bar.update(len(results))


async def _ingest_local(
    settings: Settings,
    namespace: str,
    files: list[tuple[Path, str]],
    batch: int,
    counts: dict[str, int],
    bar: tqdm,
) -> None:
    from knowledge_service.app import Knowledge
    from knowledge_service.schemas.documents import IngestRequest

    core = await Knowledge.open(settings)
    try:
        for start in range(0, len(files), batch):
            docs = []
            for i, (path, doc_id) in enumerate(files[start : start + batch], start=start):
                try:
                    parsed = await core.parsers.parse(path.name, path.read_bytes(), None, field=f"files[{i}]")
                except KnowledgeError as exc:
                    _tally(counts, [{"id": doc_id, "status": "failed", "error": str(exc)}], bar)
                    continue
                docs.append(parsed.document(doc_id))
            if docs:
                resp = await core.documents.ingest(IngestRequest(namespace=namespace, documents=docs))
                _tally(counts, resp.results, bar)
    finally:
        await core.close()


@app.command()
def search(
    query: str,
    namespace: NamespaceOpt,
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or sparse")] = "hybrid",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Search a namespace and print the results as JSON."""
    settings = Settings()
    body = {"query": query, "top_k": top_k, "mode": mode}
    service = _service_url(settings, url)
    if service:
        resp = httpx.post(
            f"{service}/v1/namespaces/{namespace}/search", json=body, headers=_auth(api_key), timeout=60
        )
        if resp.status_code >= 400:
            raise _fail(RuntimeError(resp.json().get("error", {}).get("message", resp.text)))
        typer.echo(json.dumps(resp.json(), indent=2))
        return
    from knowledge_service.schemas.common import parse
    from knowledge_service.schemas.search import SearchRequest

    async def run() -> str:
        from knowledge_service.app import Knowledge

        core = await Knowledge.open(settings)
        try:
            out = await core.searcher.search(parse(SearchRequest, namespace=namespace, **body))
            return out.model_dump_json(indent=2)
        finally:
            await core.close()

    try:
        typer.echo(asyncio.run(run()))
    except (KnowledgeError, ValueError) as exc:
        raise _fail(exc) from None


@app.command("eval")
def evaluate(
    dataset: Annotated[Path, typer.Option(exists=True, file_okay=False, help="BEIR-layout folder.")],
    split: Annotated[str, typer.Option(help="qrels split, e.g. test or train")] = "test",
    mode: Annotated[list[str] | None, typer.Option(help="hybrid, dense, sparse; repeatable")] = None,
    fusion: Annotated[str, typer.Option(help="rrf or dbsf (with --mode)")] = "rrf",
    rrf_k: Annotated[int, typer.Option("--rrf-k")] = 60,
    profile: Annotated[list[str] | None, typer.Option(help="A saved profile to evaluate; repeatable")] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--settings", help="Inline profile settings as JSON; repeatable")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report comparing the profiles")] = None,
    depth: Annotated[int, typer.Option(help="chunks retrieved per query")] = 200,
) -> None:
    """Ingest a BEIR collection into its own namespace (once) and print one JSON line per run.

    With --mode: one line per retrieval mode. With --profile/--settings: one line per profile, each
    after the first compared with it (delta, paired permutation p-value, wins/losses).
    """
    from knowledge_service.pipelines.evaluation.datasets import load_beir
    from knowledge_service.schemas.evaluations import ProfileSpec
    from knowledge_service.tools.eval_runner import run_eval, run_profile_eval

    config = Settings()
    try:
        data = load_beir(dataset, split)
        if profile or settings:
            specs = [ProfileSpec(name=n) for n in profile or []]
            specs += [
                ProfileSpec(settings=_json_arg(raw, "--settings"), label=f"settings{i + 1}")
                for i, raw in enumerate(settings or [])
            ]
            lines = asyncio.run(run_profile_eval(config, data, specs, depth, report))
        else:
            lines = asyncio.run(run_eval(config, data, mode or ["hybrid"], fusion, rrf_k, depth))
        for line in lines:
            typer.echo(json.dumps(line))
    except KnowledgeError as exc:
        raise _fail(exc) from None


def _json_arg(raw: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(ValueError(f"{option}: not valid JSON ({exc.msg})")) from None
    if not isinstance(value, dict):
        raise _fail(ValueError(f"{option}: must be a JSON object"))
    return value


@app.command()
def bench(
    dataset: Annotated[Path, typer.Option(exists=True, file_okay=False, help="BEIR-layout folder.")],
    split: Annotated[str, typer.Option(help="qrels split whose queries are used")] = "test",
    queries: Annotated[int, typer.Option(min=10, help="queries per timed phase")] = 300,
    mode: Annotated[str, typer.Option(help="hybrid, dense or sparse")] = "hybrid",
    transport: Annotated[
        str, typer.Option(help="inprocess, or grpc / http to a `knowledge serve` child")
    ] = "inprocess",
    concurrency: Annotated[
        list[int] | None, typer.Option(min=1, max=1024, help="concurrent clients; repeatable")
    ] = None,
    backend: Annotated[
        list[str] | None, typer.Option(help="torch, onnx, onnx-int8; repeatable (default: configured)")
    ] = None,
    docs: Annotated[int, typer.Option(min=1, help="documents of the corpus ingested (the first N)")] = 1000,
    data_dir: Annotated[
        Path | None, typer.Option(file_okay=False, help="keep the stores here (default: a temp folder)")
    ] = None,
) -> None:
    """Measure search and ingest through a transport (median, p99, per second, errors, memory) for
    each backend and concurrency, against the raw encoder and the engine measured in the same run."""
    from knowledge_service.pipelines.evaluation.datasets import load_beir
    from knowledge_service.schemas.common import parse
    from knowledge_service.schemas.search import RetrievalSettings
    from knowledge_service.tools.bench import TRANSPORTS, Transport, run_bench

    try:
        chosen = parse(RetrievalSettings, mode=mode).mode
        if transport not in TRANSPORTS:
            raise ValueError(f"--transport: one of {', '.join(TRANSPORTS)} (got {transport!r})")
        data = load_beir(dataset, split)
        figures = run_bench(
            Settings(),
            data,
            queries,
            chosen,
            transport=cast(Transport, transport),
            concurrency=concurrency,
            backends=backend,
            docs=docs,
            data_dir=data_dir,
        )
        typer.echo(json.dumps(asyncio.run(figures)))
    except (KnowledgeError, ValueError, RuntimeError) as exc:
        raise _fail(exc) from None


@app.command()
def scale(
    dataset: Annotated[Path, typer.Option(exists=True, file_okay=False, help="BEIR-layout folder.")],
    split: Annotated[str, typer.Option(help="qrels split whose queries are used")] = "test",
    size: Annotated[
        list[int] | None, typer.Option(min=100, help="synthetic corpus sizes in chunks; repeatable")
    ] = None,
    queries: Annotated[int, typer.Option(min=10, help="queries per timed phase")] = 200,
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="clients of the second phase")] = 16,
    optimise: Annotated[bool, typer.Option(help="also time serving while and after optimising")] = True,
    data_dir: Annotated[
        Path | None, typer.Option(file_okay=False, help="keep the stores here (default: a temp folder)")
    ] = None,
) -> None:
    """Search cost against corpus size (a synthetic corpus from the collection's vocabulary), the
    BM25 leg against rank-bm25, and the longest wait of /healthz and search while the index is
    optimised."""
    from knowledge_service.pipelines.evaluation.datasets import load_beir
    from knowledge_service.tools.scale import run_scale

    _print_figures(
        data_dir,
        "knowledge-scale-",
        lambda root: run_scale(
            Settings(),
            load_beir(dataset, split),
            size or [10_000, 100_000],
            queries,
            concurrency,
            root,
            optimise=optimise,
        ),
    )


@app.command()
def soak(
    dataset: Annotated[Path, typer.Option(exists=True, file_okay=False, help="BEIR-layout folder.")],
    split: Annotated[str, typer.Option(help="qrels split whose queries are used")] = "test",
    minutes: Annotated[float, typer.Option(min=0.5, max=240, help="how long the soak runs")] = 10,
    docs: Annotated[int, typer.Option(min=1, help="documents ingested before the clock starts")] = 300,
    writes: Annotated[bool, typer.Option(help="mix in ingests, re-ingests and deletes")] = True,
    data_dir: Annotated[
        Path | None, typer.Option(file_okay=False, help="keep the store here (default: a temp folder)")
    ] = None,
) -> None:
    """A fixed-rate mix of searches (hits and misses), ingests, re-ingests and deletes against a
    `knowledge serve` child: errors, 429s, p50/p99 and resident memory per minute."""
    from knowledge_service.pipelines.evaluation.datasets import load_beir
    from knowledge_service.tools.soak import run_soak

    _print_figures(
        data_dir,
        "knowledge-soak-",
        lambda root: run_soak(Settings(), load_beir(dataset, split), minutes, docs, root, writes=writes),
    )


def _print_figures(
    data_dir: Path | None, prefix: str, run: Callable[[Path], Coroutine[Any, Any, dict[str, Any]]]
) -> None:
    """Print, as one JSON line, the figures of ``run(root)``: root is ``data_dir``, or a temporary
    folder removed afterwards. A refusal or failure is a one-line error and a non-zero exit."""
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            typer.echo(json.dumps(asyncio.run(run((data_dir or Path(tmp)).resolve()))))
    except (KnowledgeError, ValueError, RuntimeError) as exc:
        raise _fail(exc) from None


if __name__ == "__main__":
    app()
