"""fkp.inputs.list_images: what fkp detect (drawing) and fkp align process, and the paths that name nothing."""

from __future__ import annotations

from pathlib import Path

from fkp.inputs import iter_inputs, list_images


def test_list_images_lists_files_as_given_and_folders_sorted_without_sub_folders(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.png", "a.JPG", "notes.txt", "sub/c.png"):
        (folder / name).write_bytes(b"x")
    single = tmp_path / "any-name.bin"
    single.write_bytes(b"x")
    names, errors = list_images([str(single), str(folder), str(tmp_path / "missing.png")])
    assert names == [str(single), str(folder / "a.JPG"), str(folder / "b.png")]
    assert errors == [(str(tmp_path / "missing.png"), "no such file or folder")]
    # the same folder listing as a bulk run's, which also walks sub-folders with recursive
    assert list(iter_inputs([str(folder)])) == names[1:]


def test_list_images_names_a_path_it_cannot_look_at(tmp_path: Path) -> None:
    too_long = str(tmp_path / ("x" * 300))
    names, errors = list_images([too_long])
    assert names == [] and errors[0][0] == too_long and "too long" in errors[0][1].lower()
