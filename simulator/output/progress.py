"""A progress bar on the terminal, when the optional ``tqdm`` (extra ``progress``) is
installed: runs count steps, studies count runs. Without tqdm, or when not asked for,
:func:`progress_bar` gives None and the caller shows nothing."""


def progress_bar(enabled: bool, total: int, unit: str):
    """A tqdm bar of ``total`` ``unit``s that leaves no line behind, or None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, leave=False)
