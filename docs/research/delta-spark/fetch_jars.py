"""Download Maven jars with SHA-1 check (stdlib only). usage: fetch_jars.py DEST G:A:V ..."""
import hashlib, sys, time, urllib.request
from pathlib import Path
BASE = "https://repo1.maven.org/maven2"
dest = Path(sys.argv[1]); dest.mkdir(parents=True, exist_ok=True)
t0 = time.time(); total = 0
for coord in sys.argv[2:]:
    g, a, v = coord.split(":")
    name = f"{a}-{v}.jar"; url = f"{BASE}/{g.replace('.', '/')}/{a}/{v}/{name}"
    out = dest / name
    want = urllib.request.urlopen(url + ".sha1", timeout=60).read().decode().split()[0].strip()
    if out.is_file() and hashlib.sha1(out.read_bytes()).hexdigest() == want:
        print("cached", name); continue
    data = urllib.request.urlopen(url, timeout=300).read()
    got = hashlib.sha1(data).hexdigest()
    if got != want: sys.exit(f"sha1 mismatch {name}: {got} != {want}")
    tmp = out.with_suffix(".part"); tmp.write_bytes(data); tmp.replace(out)
    total += len(data); print(f"ok {name} {len(data)/1e6:.2f} MB sha1={got}")
print(f"{total/1e6:.2f} MB in {time.time()-t0:.2f}s")
