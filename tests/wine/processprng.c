/* Stand-in for bcryptprimitives.dll, for tests under Wine only (Wine 8.0 lacks it; Rust's
 * standard library imports ProcessPrng from it; real Windows 10/11 have it). Never shipped:
 * packaging/windows/build-msi takes cntt-agent.exe alone, and its test checks the MSI holds no
 * such file. Built by tests/wine/setup with x86_64-w64-mingw32-gcc. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
