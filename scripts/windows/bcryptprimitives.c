/*
 * ProcessPrng for wine < 8.13, test use only.
 *
 * Rust >= 1.78 fills std's random state (HashMap keys) through ProcessPrng
 * from bcryptprimitives.dll, which wine only provides from 8.13. On the
 * wine 8.0 of Debian 12 a Rust .exe therefore exits with code 53 before
 * main. This DLL, placed next to the .exe under wine, provides the one
 * function by RtlGenRandom (advapi32's SystemFunction036), the generator
 * that Rust used before 1.78. It is never shipped with wasikv: real Windows
 * has ProcessPrng.
 *
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *       bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
