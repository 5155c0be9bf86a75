/* The log's frame of one record, built in one allocation (see logframe.py for why and for the
 * pure-Python version it must equal byte for byte; framing.py and record.py for the layouts).
 *
 * frame_record(seq, version, kind, time, ngroup, group, fmt, body, tail) -> bytes
 *
 *   u32 length, u32 crc32(payload), u32 crc32(the 8 bytes before)        (the frame header)
 *   payload: u64 seq, u8 version, u8 kind, f64 time, u16 ngroup, group (the labels, encoded),
 *            u8 fmt, u32 len(body), body, tail (the idempotency key part of version 2, or empty)
 *
 * All little-endian, written byte by byte, so the bytes are the same on any host. The CRC is
 * CRC-32 (ISO-HDLC, zlib's), slicing by 8.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t table[8][256];

static void init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = table[0][table[t - 1][i] & 0xFF] ^ (table[t - 1][i] >> 8);
}

static uint32_t crc32(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                            (uint32_t)p[3] << 24);
        crc = table[7][a & 0xFF] ^ table[6][(a >> 8) & 0xFF] ^ table[5][(a >> 16) & 0xFF] ^
              table[4][a >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^
              table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static unsigned char *put(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static int small(PyObject *o, long max, const char *what, long *out)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > max) {
        PyErr_Format(PyExc_OverflowError, "%s %ld out of range 0..%ld", what, v, max);
        return -1;
    }
    *out = v;
    return 0;
}

static PyObject *frame_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long version, kind, ngroup, fmt;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "frame_record takes 9 arguments");
        return NULL;
    }
    unsigned long long seq = PyLong_AsUnsignedLongLong(args[0]);
    if (seq == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (small(args[1], 255, "version", &version) || small(args[2], 255, "kind", &kind) ||
        small(args[4], 65535, "number of grouping labels", &ngroup) ||
        small(args[6], 255, "format", &fmt))
        return NULL;
    double time = PyFloat_AsDouble(args[3]);
    if (time == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *group = args[5], *body = args[7], *tail = args[8];
    if (!PyBytes_Check(group) || !PyBytes_Check(body) || !PyBytes_Check(tail)) {
        PyErr_SetString(PyExc_TypeError, "group, body and tail must be bytes");
        return NULL;
    }
    Py_ssize_t glen = PyBytes_GET_SIZE(group), blen = PyBytes_GET_SIZE(body),
               tlen = PyBytes_GET_SIZE(tail);
    if ((uint64_t)blen > 0xFFFFFFFFu) {
        PyErr_SetString(PyExc_OverflowError, "body longer than 4 GiB");
        return NULL;
    }
    uint64_t plen = 8 + 1 + 1 + 8 + 2 + (uint64_t)glen + 1 + 4 + (uint64_t)blen + (uint64_t)tlen;
    if (plen > 0x7FFFFFFFu) {
        PyErr_SetString(PyExc_OverflowError, "record longer than a frame may be");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(12 + plen));
    if (out == NULL)
        return NULL;
    unsigned char *frame = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *p = frame + 12;
    uint64_t time_bits;
    memcpy(&time_bits, &time, 8);
    p = put(p, seq, 8);
    *p++ = (unsigned char)version;
    *p++ = (unsigned char)kind;
    p = put(p, time_bits, 8);
    p = put(p, (uint64_t)ngroup, 2);
    memcpy(p, PyBytes_AS_STRING(group), glen);
    p += glen;
    *p++ = (unsigned char)fmt;
    p = put(p, (uint64_t)blen, 4);
    memcpy(p, PyBytes_AS_STRING(body), blen);
    p += blen;
    memcpy(p, PyBytes_AS_STRING(tail), tlen);
    put(frame, plen, 4);
    put(frame + 4, crc32(frame + 12, plen), 4);
    put(frame + 8, crc32(frame, 8), 4);
    return out;
}

static PyObject *py_crc32(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t crc = crc32(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef methods[] = {
    {"frame_record", (PyCFunction)(void (*)(void))frame_record, METH_FASTCALL,
     "frame_record(seq, version, kind, time, ngroup, group, fmt, body, tail) -> bytes"},
    {"crc32", py_crc32, METH_O, "crc32(data) -> int: the CRC the frames use (for tests)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_logframe",
                                    "The log's record frame, in C (logframe.py).", -1, methods};

PyMODINIT_FUNC PyInit__logframe(void)
{
    init_table();
    return PyModule_Create(&module);
}
