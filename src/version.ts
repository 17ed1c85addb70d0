// distill's version (kept equal to package.json by a test) and the version of the layer format: bump
// LAYER_FORMAT whenever a change alters the bytes of a layer built from the same inputs, so that no
// cached layer from an older distill is ever reused.
export const DISTILL_VERSION = '0.1.0';
// 3: md5sums list only shipped files; /usr/share/doc/<pkg> links kept. 4: layers deflated by libdeflate.
// 5: libdeflate level 5 (was 6).
export const LAYER_FORMAT = 5;
